// Gates waiting for a person: what the agent proposes, which rule stopped it, the run it
// belongs to and when the gate expires. Approving or rejecting takes effect at once: the
// agent's next retry of the same request is answered by the decision.

import { useState } from "preact/hooks";

import { type Gate, type List, type Run, type Session, get, holds, post, query } from "../api";
import { useAgents } from "../directory";
import { Badge, Json, Loading, Page, Problem, When, count, useLive, usd } from "../ui";

const TABS = ["pending", "approved", "rejected", "expired", ""] as const;

export function Approvals({ session }: { session: Session }) {
  const [tab, setTab] = useState<(typeof TABS)[number]>("pending");
  const gates = useLive(() => get<List<Gate>>("/api/approval-requests" + query({ status: tab, limit: 100 })), [tab]);
  return (
    <Page title="Approvals" actions={gates.data && <span class="muted">{gates.data.total} · live</span>}>
      <nav class="tabs">
        {TABS.map((name) => (
          <button class={tab === name ? "active" : undefined} onClick={() => setTab(name)}>
            {name || "all"}
          </button>
        ))}
      </nav>
      <Problem error={gates.error} />
      {!gates.data ? (
        <Loading what="approval requests" />
      ) : gates.data.data.length === 0 ? (
        <p class="muted">{tab === "pending" ? "Nothing is waiting for approval." : "None."}</p>
      ) : (
        gates.data.data.map((gate) => <GateCard key={gate.id} gate={gate} session={session} onDecided={gates.reload} />)
      )}
    </Page>
  );
}

function GateCard({ gate, session, onDecided }: { gate: Gate; session: Session; onDecided: () => void }) {
  const { nameOf } = useAgents();
  const run = useLive(() => get<{ data: Run }>(`/api/runs/${encodeURIComponent(gate.run_id)}`), [gate.run_id], null);
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();
  const canDecide = gate.status === "pending" && (holds(session, "approve") || holds(session, "write"));

  const decide = async (verdict: "approve" | "reject") => {
    setBusy(true);
    setError(undefined);
    try {
      await post(`/api/approval-requests/${gate.id}/${verdict}`, reason.trim() ? { reason: reason.trim() } : {});
      onDecided();
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };

  const context = run.data?.data;
  return (
    <article class="gate card" data-gate-id={gate.id}>
      <header>
        <h2>
          {gate.proposed_action?.tool ?? gate.tool ?? "budget"} <Badge status={gate.status} />
        </h2>
        <span class="muted">
          rule <strong>{gate.rule}</strong> · {gate.trigger.replace(/_/g, " ")}
          {gate.holds_answer && " · the model's answer is held"}
        </span>
      </header>
      <div class="gate-body">
        <div>
          <h3>Proposed action</h3>
          {gate.proposed_action?.args === null || gate.proposed_action?.args === undefined ? (
            <p class="muted">The request declares the tool; no arguments yet.</p>
          ) : (
            <Json value={gate.proposed_action.args} />
          )}
        </div>
        <dl class="facts">
          <dt>Run</dt>
          <dd>
            <a href={`/runs/${encodeURIComponent(gate.run_id)}`}>{gate.run_id}</a>
          </dd>
          <dt>Agent</dt>
          <dd>{nameOf(gate.agent_id)}</dd>
          {context && (
            <>
              <dt>Run so far</dt>
              <dd>
                {usd(context.spend_usd)}
                {context.budget_limit_usd !== null && <> of {usd(context.budget_limit_usd)}</>} · {count(context.steps_count)}{" "}
                steps · {count(context.total_tokens)} tokens
              </dd>
            </>
          )}
          <dt>Opened</dt>
          <dd>
            <When at={gate.created_at} />
          </dd>
          <dt>{gate.status === "pending" ? "Expires" : "Expiry"}</dt>
          <dd>
            <When at={gate.expires_at} />
          </dd>
          {gate.approver_channel && (
            <>
              <dt>Channel</dt>
              <dd>{gate.approver_channel}</dd>
            </>
          )}
          {gate.decided_by && (
            <>
              <dt>Decided</dt>
              <dd>
                {gate.decided_by}, <When at={gate.decided_at} />
                {gate.reason && <> — “{gate.reason}”</>}
              </dd>
            </>
          )}
        </dl>
      </div>
      {canDecide && (
        <footer class="decide">
          <input
            name="reason"
            placeholder="Reason (kept in the audit)"
            value={reason}
            onInput={(e) => setReason((e.target as HTMLInputElement).value)}
          />
          <button class="primary" disabled={busy} onClick={() => decide("approve")}>
            Approve
          </button>
          <button class="danger" disabled={busy} onClick={() => decide("reject")}>
            Reject
          </button>
        </footer>
      )}
      <Problem error={error} />
    </article>
  );
}
