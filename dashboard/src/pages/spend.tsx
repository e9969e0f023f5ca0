// Spend over time, stacked by agent or by model (the top few; the rest as "other"), from the
// gateway's analytics over recorded steps.

import { useState } from "preact/hooks";

import { type CostRow, type List, get, query } from "../api";
import { useAgents } from "../directory";
import { Loading, Page, Problem, count, useLive, usd } from "../ui";

const WINDOWS = {
  "24h": { hours: 24, granularity: "hour", stepMs: 3_600_000 },
  "7d": { hours: 24 * 7, granularity: "day", stepMs: 86_400_000 },
  "30d": { hours: 24 * 30, granularity: "day", stepMs: 86_400_000 },
} as const;
type Window = keyof typeof WINDOWS;
type Dimension = "agent" | "model";

const TOP = 6;
const COLORS = ["#4f7cff", "#e0803a", "#3aa876", "#c24f9b", "#8a6fdf", "#d0b43c", "#9aa3ad"];

interface Series {
  key: string;
  total: number;
  buckets: Map<number, number>;
}

interface Chart {
  buckets: number[];
  series: Series[];
  rows: CostRow[];
}

const costs = (params: Record<string, string | undefined>) => get<List<CostRow>>("/api/analytics/costs" + query(params));

async function loadChart(window: Window, dimension: Dimension): Promise<Chart> {
  const { hours, granularity, stepMs } = WINDOWS[window];
  const now = Date.now();
  const first = Math.floor((now - hours * 3_600_000) / stepMs) * stepMs;
  const since = new Date(first).toISOString();
  const rows = (await costs({ group_by: dimension, since })).data.sort((a, b) => b.cost_usd - a.cost_usd);
  const top = rows.slice(0, TOP);
  const filter = (key: string) => (dimension === "agent" ? { agent_id: key } : { model: key });
  const [everything, ...perKey] = await Promise.all([
    costs({ group_by: "time", granularity, since }),
    ...top.map((row) => costs({ group_by: "time", granularity, since, ...filter(row.group) })),
  ]);
  const toBuckets = (list: List<CostRow>) => new Map(list.data.map((row) => [Date.parse(row.group), row.cost_usd]));
  const series: Series[] = top.map((row, index) => ({ key: row.group, total: row.cost_usd, buckets: toBuckets(perKey[index]) }));
  if (rows.length > TOP) {
    const all = toBuckets(everything);
    const other = new Map<number, number>();
    for (const [at, cost] of all) {
      const shown = series.reduce((sum, s) => sum + (s.buckets.get(at) ?? 0), 0);
      if (cost - shown > 0) other.set(at, cost - shown);
    }
    series.push({ key: "other", total: rows.slice(TOP).reduce((sum, row) => sum + row.cost_usd, 0), buckets: other });
  }
  const buckets: number[] = [];
  for (let at = first; at <= now; at += stepMs) buckets.push(at);
  return { buckets, series, rows };
}

export function Spend() {
  const [window, setWindow] = useState<Window>("24h");
  const [dimension, setDimension] = useState<Dimension>("agent");
  const chart = useLive(() => loadChart(window, dimension), [window, dimension], 10_000);
  const { nameOf } = useAgents();
  const label = (key: string) => (dimension === "agent" && key !== "other" ? nameOf(key) : key);

  return (
    <Page
      title="Spend"
      actions={
        <>
          <select aria-label="window" value={window} onChange={(e) => setWindow((e.target as HTMLSelectElement).value as Window)}>
            {Object.keys(WINDOWS).map((name) => (
              <option value={name}>last {name}</option>
            ))}
          </select>
          <select aria-label="by" value={dimension} onChange={(e) => setDimension((e.target as HTMLSelectElement).value as Dimension)}>
            <option value="agent">by agent</option>
            <option value="model">by model</option>
          </select>
        </>
      }
    >
      <Problem error={chart.error} />
      {!chart.data ? (
        <Loading what="spend" />
      ) : chart.data.rows.length === 0 ? (
        <p class="muted">No spend in this window.</p>
      ) : (
        <>
          <StackedBars chart={chart.data} label={label} stepMs={WINDOWS[window].stepMs} />
          <table>
            <thead>
              <tr>
                <th>{dimension === "agent" ? "Agent" : "Model"}</th>
                <th class="num">Spend</th>
                <th class="num">Steps</th>
                <th class="num">Input tokens</th>
                <th class="num">Output tokens</th>
              </tr>
            </thead>
            <tbody>
              {chart.data.rows.map((row, index) => (
                <tr key={row.group}>
                  <td>
                    <span class="swatch" style={{ background: COLORS[Math.min(index, TOP)] }} /> {label(row.group)}
                  </td>
                  <td class="num">{usd(row.cost_usd)}</td>
                  <td class="num">{count(row.steps)}</td>
                  <td class="num">{count(row.input_tokens)}</td>
                  <td class="num">{count(row.output_tokens)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </Page>
  );
}

function StackedBars({ chart, label, stepMs }: { chart: Chart; label: (key: string) => string; stepMs: number }) {
  const width = 900;
  const height = 220;
  const pad = { left: 64, bottom: 22, top: 8 };
  const stacks = chart.buckets.map((at) => chart.series.map((s) => s.buckets.get(at) ?? 0));
  const peak = Math.max(...stacks.map((stack) => stack.reduce((a, b) => a + b, 0)), 1e-9);
  const slot = (width - pad.left) / chart.buckets.length;
  const y = (value: number) => ((height - pad.bottom - pad.top) * value) / peak;
  const tick = (at: number) =>
    stepMs < 86_400_000 ? new Date(at).toLocaleTimeString([], { hour: "2-digit" }) : new Date(at).toLocaleDateString([], { month: "short", day: "numeric" });
  const labelEvery = Math.ceil(chart.buckets.length / 12);
  // Enough decimals that the grid lines' labels differ, however small the spend.
  const decimals = Math.min(Math.max(2, Math.ceil(-Math.log10(peak)) + 1), 9);
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label="spend over time">
        {[0, 0.5, 1].map((share) => (
          <g key={share}>
            <line x1={pad.left} x2={width} y1={height - pad.bottom - y(peak * share)} y2={height - pad.bottom - y(peak * share)} class="grid" />
            <text x={pad.left - 6} y={height - pad.bottom - y(peak * share) + 4} text-anchor="end" class="axis">
              ${(peak * share).toFixed(decimals)}
            </text>
          </g>
        ))}
        {chart.buckets.map((at, column) => {
          let base = height - pad.bottom;
          return (
            <g key={at}>
              {stacks[column].map((value, index) => {
                const h = y(value);
                base -= h;
                return value > 0 ? (
                  <rect x={pad.left + column * slot + 1} y={base} width={Math.max(slot - 2, 1)} height={h} fill={COLORS[index]}>
                    <title>
                      {label(chart.series[index].key)}: {usd(value)}
                    </title>
                  </rect>
                ) : null;
              })}
              {column % labelEvery === 0 && (
                <text x={pad.left + column * slot + slot / 2} y={height - 6} text-anchor="middle" class="axis">
                  {tick(at)}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <figcaption class="legend">
        {chart.series.map((s, index) => (
          <span key={s.key}>
            <span class="swatch" style={{ background: COLORS[index] }} /> {label(s.key)} {usd(s.total)}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
