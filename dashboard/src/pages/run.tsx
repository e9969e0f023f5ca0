// One run, live: its budget against the cap pinned by its policy version, the trace (SPEC §8
// spans) as a timeline with cost and tokens, its gates, the ledger and whether the audit chain
// verifies.

import { useState } from "preact/hooks";

import {
  type AuditVerification,
  type Gate,
  type Ledger,
  type LedgerEntry,
  type List,
  type Policy,
  type Run,
  type Session,
  type Span,
  type Trace,
  get,
  holds,
  post,
} from "../api";
import { useAgents } from "../directory";
import { Badge, BudgetBar, Loading, Page, Problem, When, count, useLive, usd } from "../ui";

const path = (id: string) => `/api/runs/${encodeURIComponent(id)}`;

/** Entries of one call share a millisecond; within it they happened in this order. */
const LEDGER_ORDER = ["reservation", "settlement", "tool_cost", "release"];
const chronological = (entries: LedgerEntry[]) =>
  [...entries].sort(
    (a, b) => Date.parse(a.created_at) - Date.parse(b.created_at) || LEDGER_ORDER.indexOf(a.kind) - LEDGER_ORDER.indexOf(b.kind),
  );

interface RunView {
  run: Run;
  trace: Trace;
  ledger: Ledger;
  audit: AuditVerification;
  gates: List<Gate>;
  policy: Policy | null;
}

/** Policy versions never change once written: each is fetched once, not on every refresh. */
const pinnedPolicies = new Map<string, Promise<Policy | null>>();
function pinnedPolicy(id: string, version: number): Promise<Policy | null> {
  const key = `${id}/${version}`;
  let policy = pinnedPolicies.get(key);
  if (!policy) {
    policy = get<{ data: Policy }>(`/api/policies/${id}/versions/${version}`).then(
      (answer) => answer.data,
      () => {
        pinnedPolicies.delete(key); // a failure is retried on the next refresh
        return null;
      },
    );
    pinnedPolicies.set(key, policy);
  }
  return policy;
}

async function loadRun(id: string): Promise<RunView> {
  const [run, trace, ledger, audit, gates] = await Promise.all([
    get<{ data: Run }>(path(id)),
    get<{ data: Trace }>(`${path(id)}/trace`),
    get<Ledger>(`${path(id)}/ledger?limit=200`),
    get<{ data: AuditVerification }>(`${path(id)}/audit/verify`),
    get<List<Gate>>(`/api/approval-requests?run_id=${encodeURIComponent(id)}&limit=100`),
  ]);
  const { policy_id, policy_version } = run.data;
  const policy = policy_id && policy_version ? await pinnedPolicy(policy_id, policy_version) : null;
  return { run: run.data, trace: trace.data, ledger, audit: audit.data, gates, policy };
}

export function RunDetail({ id, session }: { id: string; session: Session }) {
  const live = useLive(() => loadRun(id), [id]);
  const { nameOf } = useAgents();
  const [stopError, setStopError] = useState<Error>();

  if (!live.data) {
    return (
      <Page title={`Run ${id}`}>
        <Problem error={live.error} />
        {!live.error && <Loading what="the run" />}
      </Page>
    );
  }
  const { run, trace, ledger, audit, gates, policy } = live.data;
  const stop = () =>
    post(`${path(id)}/stop`, { reason: "stopped from the dashboard" }).then(live.reload, setStopError);

  return (
    <Page
      title={
        <>
          Run <code>{run.id}</code> <Badge status={run.status} />
        </>
      }
      actions={
        run.status === "running" &&
        holds(session, "write") && (
          <button class="danger" onClick={stop}>
            Stop run
          </button>
        )
      }
    >
      <Problem error={live.error ?? stopError} />
      <dl class="facts">
        <dt>Agent</dt>
        <dd>{nameOf(run.agent_id)}</dd>
        <dt>Policy</dt>
        <dd>
          {run.policy_id ? (
            <a href={`/policies/${run.policy_id}`}>
              {policy?.name ?? run.policy_id} v{run.policy_version}
            </a>
          ) : (
            "none"
          )}
        </dd>
        <dt>Tokens</dt>
        <dd>
          {count(run.tokens.input)} in · {count(run.tokens.output)} out
        </dd>
        <dt>Steps</dt>
        <dd>{count(run.steps_count)}</dd>
        <dt>Started</dt>
        <dd>
          <When at={run.started_at} />
        </dd>
        <dt>{run.ended_at ? "Ended" : "Last activity"}</dt>
        <dd>
          <When at={run.ended_at ?? run.last_activity_at} />
          {run.ended_reason && <span class="muted"> ({run.ended_reason})</span>}
        </dd>
        <dt>Audit</dt>
        <dd class="audit-state">
          {audit.valid ? (
            <span class="badge ok">chain verified</span>
          ) : (
            <span class="badge bad">
              chain broken at event {audit.broken_at_seq}: {audit.reason}
            </span>
          )}{" "}
          <span class="muted">
            {audit.events} events{audit.head && <> · head {audit.head.slice(0, 12)}…</>}
          </span>
        </dd>
      </dl>

      <h2>Budget</h2>
      <BudgetBar spend={run.spend_usd} limit={run.budget_limit_usd} alertAt={policy?.budget?.alert_at} />

      <h2>Trace</h2>
      <Timeline spans={trace.spans} />

      {gates.data.length > 0 && (
        <>
          <h2>Gates</h2>
          <table>
            <thead>
              <tr>
                <th>Gate</th>
                <th>Tool</th>
                <th>Rule</th>
                <th>Status</th>
                <th>Decided by</th>
                <th>Reason</th>
                <th>Opened</th>
              </tr>
            </thead>
            <tbody>
              {gates.data.map((gate) => (
                <tr key={gate.id}>
                  <td>
                    <code>{gate.id}</code>
                  </td>
                  <td>{gate.tool ?? "—"}</td>
                  <td>{gate.rule}</td>
                  <td>
                    <Badge status={gate.status} />
                  </td>
                  <td>{gate.decided_by ?? "—"}</td>
                  <td>{gate.reason ?? "—"}</td>
                  <td>
                    <When at={gate.created_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}

      <h2>Ledger</h2>
      <p class="muted">
        {ledger.total} entries · spend derived from the ledger: {usd(ledger.run_spend_usd)}
      </p>
      <table class="ledger">
        <thead>
          <tr>
            <th>Entry</th>
            <th>Step</th>
            <th class="num">Amount</th>
            <th>At</th>
          </tr>
        </thead>
        <tbody>
          {chronological(ledger.data).map((entry, index) => (
            <tr key={index}>
              <td>{entry.kind}</td>
              <td>{entry.step_id ? <code>{entry.step_id}</code> : "—"}</td>
              <td class="num">{usd(entry.amount_usd)}</td>
              <td>
                <When at={entry.created_at} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>
  );
}

function attribute<T>(span: Span, name: string): T | undefined {
  return span.attributes[name] as T | undefined;
}

function spanKind(span: Span): string {
  return span.name.split(".")[0];
}

/** The spans on one time axis: the run on top, every step and gate below it. */
function Timeline({ spans }: { spans: Span[] }) {
  if (spans.length === 0) return <p class="muted">No spans yet.</p>;
  const starts = spans.map((span) => Date.parse(span.start_time));
  const ends = spans.map((span) => Date.parse(span.end_time));
  const origin = Math.min(...starts);
  const width = Math.max(Math.max(...ends) - origin, 1);
  return (
    <ol class="timeline" aria-label="trace">
      {spans.map((span, index) => {
        const cost = attribute<number>(span, "gen_ai.usage.cost.amount");
        const input = attribute<number>(span, "gen_ai.usage.input_tokens");
        const output = attribute<number>(span, "gen_ai.usage.output_tokens");
        const gateStatus = attribute<string>(span, "rungate.gate.status");
        const left = ((starts[index] - origin) / width) * 100;
        const size = Math.max(((ends[index] - starts[index]) / width) * 100, 0.4);
        return (
          <li key={span.span_id} class={`span ${spanKind(span)} ${span.status}`} data-span={span.name}>
            <div class="span-label">
              <strong>{span.name}</strong>
              {gateStatus && <Badge status={gateStatus} />}
              <span class="muted">
                {span.duration_ms} ms
                {cost !== undefined && <> · {usd(cost)}</>}
                {input !== undefined && (
                  <>
                    {" "}
                    · {count(input)} in / {count(output ?? 0)} out
                  </>
                )}
              </span>
            </div>
            <div class="span-track">
              <div class="span-bar" style={{ left: `${left}%`, width: `${size}%` }} title={`${span.start_time} → ${span.end_time}`} />
            </div>
          </li>
        );
      })}
    </ol>
  );
}
