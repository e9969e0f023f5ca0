// Building blocks every page shares: live data (polling), money, time, status badges, errors.

import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";

import { ApiError } from "./api";

/** How often live pages refresh; paused while the tab is hidden. */
export const LIVE_MS = 2000;

export interface Live<T> {
  data: T | undefined;
  error: Error | undefined;
  reload: () => void;
}

/**
 * `load()` now, again whenever `deps` change, and every `everyMs` while the page is visible.
 * A slow answer never overwrites a newer one.
 */
export function useLive<T>(load: () => Promise<T>, deps: unknown[], everyMs: number | null = LIVE_MS): Live<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<Error>();
  const generation = useRef(0);
  const reload = useCallback(() => {
    const mine = ++generation.current;
    load().then(
      (value) => {
        if (mine !== generation.current) return;
        setData(value);
        setError(undefined);
      },
      (err: Error) => {
        if (mine === generation.current) setError(err);
      },
    );
  }, deps);
  useEffect(() => {
    setData(undefined);
    reload();
    if (everyMs === null) return;
    const timer = setInterval(() => {
      if (document.visibilityState === "visible") reload();
    }, everyMs);
    return () => clearInterval(timer);
  }, [reload]);
  return { data, error, reload };
}

export function usd(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  const abs = Math.abs(value);
  if (abs === 0) return "$0.00";
  if (abs < 0.01) return `$${value.toFixed(6)}`;
  return `$${value.toFixed(2)}`;
}

export function count(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : value.toLocaleString("en-US");
}

export function ago(iso: string | null | undefined): string {
  if (!iso) return "—";
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
  const future = seconds < 0;
  const s = Math.abs(seconds);
  const text =
    s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : s < 86400 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86400)}d`;
  return future ? `in ${text}` : `${text} ago`;
}

export function When({ at }: { at: string | null | undefined }) {
  if (!at) return <span class="muted">—</span>;
  return <time dateTime={at} title={new Date(at).toLocaleString()}>{ago(at)}</time>;
}

const TONES: Record<string, string> = {
  running: "info",
  pending: "warn",
  completed: "ok",
  approved: "ok",
  success: "ok",
  ok: "ok",
  active: "ok",
  delivered: "ok",
  stopped: "bad",
  rejected: "bad",
  error: "bad",
  blocked: "bad",
  failed: "bad",
  dead: "bad",
  disabled: "muted",
  expired: "muted",
  timeout: "bad",
};

export function Badge({ status }: { status: string }) {
  return <span class={`badge ${TONES[status] ?? "muted"}`}>{status}</span>;
}

export function Problem({ error }: { error: Error | undefined }) {
  if (!error) return null;
  const code = error instanceof ApiError ? error.code : "error";
  return (
    <p class="problem" role="alert">
      <code>{code}</code> {error.message}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return <p class="muted">Loading {what}…</p>;
}

export function Page({ title, actions, children }: { title: ComponentChildren; actions?: ComponentChildren; children: ComponentChildren }) {
  return (
    <section class="page">
      <header class="page-head">
        <h1>{title}</h1>
        {actions && <div class="actions">{actions}</div>}
      </header>
      {children}
    </section>
  );
}

export function Json({ value }: { value: unknown }) {
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>;
}

/** A budget bar: spend against the cap, with the alert threshold marked. */
export function BudgetBar({ spend, limit, alertAt }: { spend: number; limit: number | null; alertAt?: number }) {
  if (!limit) return <p class="muted">No USD cap: {usd(spend)} spent.</p>;
  const share = Math.min(spend / limit, 1);
  const tone = share >= 1 ? "bad" : alertAt !== undefined && share >= alertAt ? "warn" : "ok";
  return (
    <div class="budget" aria-label="budget">
      <div class="budget-track">
        <div class={`budget-fill ${tone}`} style={{ width: `${share * 100}%` }} />
        {alertAt !== undefined && (
          <div class="budget-alert" style={{ left: `${alertAt * 100}%` }} title={`alert at ${Math.round(alertAt * 100)}%`} />
        )}
      </div>
      <p>
        {usd(spend)} of {usd(limit)} ({(share * 100).toFixed(1)}%)
        {alertAt !== undefined && <span class="muted"> · alert at {Math.round(alertAt * 100)}%</span>}
      </p>
    </div>
  );
}

/** Previous / next over a `{data, total}` list. */
export function Pager({ offset, limit, total, onOffset }: { offset: number; limit: number; total: number; onOffset: (offset: number) => void }) {
  if (total <= limit) return null;
  return (
    <nav class="pager">
      <button disabled={offset === 0} onClick={() => onOffset(Math.max(0, offset - limit))}>
        ← Newer
      </button>
      <span class="muted">
        {offset + 1}–{Math.min(offset + limit, total)} of {total}
      </span>
      <button disabled={offset + limit >= total} onClick={() => onOffset(offset + limit)}>
        Older →
      </button>
    </nav>
  );
}
