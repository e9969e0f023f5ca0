// Agents with what their runs add up to; create one (its token is shown once, here) and
// disable or re-enable it.

import { useState } from "preact/hooks";

import { type Agent, type AgentStats, type List, type Policy, type Session, call, get, holds, post } from "../api";
import { Badge, Loading, Page, Problem, When, count, useLive, usd } from "../ui";

export function Agents({ session }: { session: Session }) {
  const agents = useLive(() => get<List<Agent>>("/api/agents?limit=500"), [], 5_000);
  const stats = useLive(() => get<List<AgentStats>>("/api/agents/stats/all"), [], 5_000);
  const policies = useLive(() => get<List<Policy>>("/api/policies?limit=200"), [], null);
  const [error, setError] = useState<Error>();
  const canWrite = holds(session, "write");
  const totals = new Map((stats.data?.data ?? []).map((row) => [row.agent_id, row]));
  const policyName = new Map((policies.data?.data ?? []).map((policy) => [policy.id, policy.name]));

  const setStatus = (agent: Agent, status: "active" | "disabled") =>
    call("PATCH", `/api/agents/${agent.id}`, { status }).then(agents.reload, setError);

  return (
    <Page title="Agents">
      {canWrite && <NewAgent policies={policies.data?.data ?? []} onCreated={agents.reload} />}
      <Problem error={agents.error ?? error} />
      {!agents.data ? (
        <Loading what="agents" />
      ) : (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Team</th>
              <th>Status</th>
              <th>Policy</th>
              <th>Token</th>
              <th class="num">Runs</th>
              <th class="num">Spend</th>
              <th class="num">Tokens</th>
              <th>Created</th>
              {canWrite && <th />}
            </tr>
          </thead>
          <tbody>
            {agents.data.data.map((agent) => {
              const total = totals.get(agent.id);
              return (
                <tr key={agent.id}>
                  <td>
                    <a href={`/runs?agent_id=${agent.id}`}>{agent.name}</a>
                  </td>
                  <td>{agent.team ?? <span class="muted">—</span>}</td>
                  <td>
                    <Badge status={agent.status} />
                  </td>
                  <td>
                    {agent.policy_id ? (
                      <a href={`/policies/${agent.policy_id}`}>{policyName.get(agent.policy_id) ?? agent.policy_id}</a>
                    ) : (
                      <span class="muted">none</span>
                    )}
                  </td>
                  <td>
                    <code>{agent.key_prefix}…</code>
                  </td>
                  <td class="num">{count(total?.total_runs ?? 0)}</td>
                  <td class="num">{usd(total?.total_cost_usd ?? 0)}</td>
                  <td class="num">{count(total?.total_tokens ?? 0)}</td>
                  <td>
                    <When at={agent.created_at} />
                  </td>
                  {canWrite && (
                    <td>
                      {agent.status === "active" ? (
                        <button onClick={() => setStatus(agent, "disabled")}>Disable</button>
                      ) : (
                        <button onClick={() => setStatus(agent, "active")}>Enable</button>
                      )}
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </Page>
  );
}

function NewAgent({ policies, onCreated }: { policies: Policy[]; onCreated: () => void }) {
  const [name, setName] = useState("");
  const [team, setTeam] = useState("");
  const [policyId, setPolicyId] = useState("");
  const [created, setCreated] = useState<Agent>();
  const [error, setError] = useState<Error>();

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      const answer = await post<{ data: Agent }>("/api/agents", {
        name: name.trim(),
        ...(team.trim() && { team: team.trim() }),
        ...(policyId && { policy_id: policyId }),
      });
      setCreated(answer.data);
      setName("");
      setTeam("");
      onCreated();
    } catch (err) {
      setError(err as Error);
    }
  };

  return (
    <form class="inline card" onSubmit={submit}>
      <label>
        New agent
        <input name="name" placeholder="name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} required />
      </label>
      <label>
        Team
        <input name="team" placeholder="optional" value={team} onInput={(e) => setTeam((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        Policy
        <select name="policy_id" value={policyId} onChange={(e) => setPolicyId((e.target as HTMLSelectElement).value)}>
          <option value="">default</option>
          {policies.map((policy) => (
            <option value={policy.id}>{policy.name}</option>
          ))}
        </select>
      </label>
      <button type="submit" class="primary">
        Create
      </button>
      <Problem error={error} />
      {created?.api_key && (
        <p class="secret" role="status">
          Token for <strong>{created.name}</strong>, shown once: <code>{created.api_key}</code>
        </p>
      )}
    </form>
  );
}
