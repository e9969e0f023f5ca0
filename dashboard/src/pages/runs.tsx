// Every run across agents, newest first, live: filters by agent, status, start time and spend
// are kept in the URL so a filtered view can be shared.

import { type List, type Run, get, query } from "../api";
import { useAgents } from "../directory";
import { navigate, useLocation } from "../router";
import { Badge, Loading, Page, Pager, Problem, When, count, useLive, usd } from "../ui";

const PAGE = 50;

/** datetime-local (the browser's local time) → RFC 3339, as the API wants it. */
function rfc3339(local: string): string | undefined {
  if (!local) return undefined;
  const at = new Date(local);
  return Number.isNaN(at.getTime()) ? undefined : at.toISOString();
}

export function RunList() {
  const { search } = useLocation();
  const { agents, nameOf } = useAgents();
  const filters = {
    agent_id: search.get("agent_id") ?? "",
    status: search.get("status") ?? "",
    since: search.get("since") ?? "",
    until: search.get("until") ?? "",
    min_spend_usd: search.get("min_spend_usd") ?? "",
    max_spend_usd: search.get("max_spend_usd") ?? "",
  };
  const offset = Number(search.get("offset") ?? 0) || 0;
  const key = JSON.stringify([filters, offset]);

  const runs = useLive(
    () =>
      get<List<Run>>(
        "/api/runs" + query({ ...filters, since: rfc3339(filters.since), until: rfc3339(filters.until), limit: PAGE, offset: offset || undefined }),
      ),
    [key],
  );

  const setFilter = (name: string, value: string) => {
    const next = new URLSearchParams(search);
    if (value) next.set(name, value);
    else next.delete(name);
    next.delete("offset");
    const text = next.toString();
    navigate("/runs" + (text ? `?${text}` : ""), true);
  };
  // Applied as the operator types (inputs) or picks (selects); an unchanged URL is not pushed twice.
  const field = (name: keyof typeof filters) => {
    const apply = (e: Event) => setFilter(name, (e.target as HTMLInputElement).value);
    return { name, value: filters[name], onInput: apply, onChange: apply };
  };

  return (
    <Page title="Runs" actions={runs.data && <span class="muted">{runs.data.total} runs · live</span>}>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Agent
          <select {...field("agent_id")}>
            <option value="">all agents</option>
            {agents.map((agent) => (
              <option value={agent.id}>{agent.name}</option>
            ))}
          </select>
        </label>
        <label>
          Status
          <select {...field("status")}>
            <option value="">any</option>
            <option value="running">running</option>
            <option value="completed">completed</option>
            <option value="stopped">stopped</option>
          </select>
        </label>
        <label>
          Started after
          <input type="datetime-local" {...field("since")} />
        </label>
        <label>
          Started before
          <input type="datetime-local" {...field("until")} />
        </label>
        <label>
          Spend ≥ $
          <input type="number" min="0" step="any" placeholder="0" {...field("min_spend_usd")} />
        </label>
        <label>
          Spend ≤ $
          <input type="number" min="0" step="any" placeholder="∞" {...field("max_spend_usd")} />
        </label>
      </form>
      <Problem error={runs.error} />
      {!runs.data ? (
        <Loading what="runs" />
      ) : runs.data.data.length === 0 ? (
        <p class="muted">No runs match.</p>
      ) : (
        <table class="runs">
          <thead>
            <tr>
              <th>Run</th>
              <th>Agent</th>
              <th>Status</th>
              <th class="num">Spend</th>
              <th class="num">Cap</th>
              <th class="num">Tokens</th>
              <th class="num">Steps</th>
              <th>Started</th>
              <th>Last activity</th>
            </tr>
          </thead>
          <tbody>
            {runs.data.data.map((run) => (
              <tr key={run.id} data-run-id={run.id}>
                <td>
                  <a href={`/runs/${encodeURIComponent(run.id)}`}>{run.id}</a>
                  {run.auto && <span class="muted"> auto</span>}
                </td>
                <td>{nameOf(run.agent_id)}</td>
                <td>
                  <Badge status={run.status} />
                </td>
                <td class="num">{usd(run.spend_usd)}</td>
                <td class="num">{usd(run.budget_limit_usd)}</td>
                <td class="num">{count(run.total_tokens)}</td>
                <td class="num">{count(run.steps_count)}</td>
                <td>
                  <When at={run.started_at} />
                </td>
                <td>
                  <When at={run.last_activity_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {runs.data && (
        <Pager
          offset={offset}
          limit={PAGE}
          total={runs.data.total}
          onOffset={(next) => {
            const params = new URLSearchParams(search);
            params.set("offset", String(next));
            navigate(`/runs?${params}`);
          }}
        />
      )}
    </Page>
  );
}
