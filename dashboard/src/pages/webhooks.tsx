// Webhooks and their delivery log: every attempt's outcome, so an operator can see why a
// receiver is not hearing from Rungate.

import { useState } from "preact/hooks";

import { type Delivery, type List, type Session, type Webhook, get, holds, post } from "../api";
import { Badge, Loading, Page, Pager, Problem, When, count, useLive } from "../ui";

export function Webhooks() {
  const hooks = useLive(() => get<List<Webhook>>("/api/webhooks?limit=200"), [], 10_000);
  return (
    <Page title="Webhooks">
      <Problem error={hooks.error} />
      {!hooks.data ? (
        <Loading what="webhooks" />
      ) : hooks.data.data.length === 0 ? (
        <p class="muted">
          No webhooks. Add one with <code>POST /api/webhooks</code>.
        </p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>URL</th>
              <th>Events</th>
              <th>Status</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {hooks.data.data.map((hook) => (
              <tr key={hook.id}>
                <td>
                  <a href={`/webhooks/${hook.id}`}>{hook.name}</a>
                </td>
                <td>
                  <code>{hook.url}</code>
                </td>
                <td>{hook.events.join(", ") || "all"}</td>
                <td>
                  <Badge status={hook.status} />
                </td>
                <td>
                  <When at={hook.created_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}

const PAGE = 50;

export function WebhookDetail({ id, session }: { id: string; session: Session }) {
  const hook = useLive(() => get<{ data: Webhook }>(`/api/webhooks/${id}`), [id], 10_000);
  const [offset, setOffset] = useState(0);
  const deliveries = useLive(() => get<List<Delivery>>(`/api/webhooks/${id}/deliveries?limit=${PAGE}&offset=${offset}`), [id, offset]);
  const [error, setError] = useState<Error>();
  const act = (what: string) =>
    post(`/api/webhooks/${id}/${what}`).then(() => {
      hook.reload();
      deliveries.reload();
    }, setError);

  const data = hook.data?.data;
  return (
    <Page
      title={data ? `Webhook ${data.name}` : "Webhook"}
      actions={
        data &&
        holds(session, "write") && (
          <>
            <button onClick={() => act("test")}>Send test event</button>
            {data.status === "active" ? (
              <button onClick={() => act("disable")}>Disable</button>
            ) : (
              <button onClick={() => act("enable")}>Enable</button>
            )}
          </>
        )
      }
    >
      <Problem error={hook.error ?? error} />
      {data && (
        <dl class="facts">
          <dt>URL</dt>
          <dd>
            <code>{data.url}</code>
          </dd>
          <dt>Events</dt>
          <dd>{data.events.join(", ") || "all"}</dd>
          <dt>Status</dt>
          <dd>
            <Badge status={data.status} />
          </dd>
          <dt>Signing secret</dt>
          <dd>
            <code>{data.secret_prefix}…</code>
          </dd>
        </dl>
      )}
      <h2>Deliveries</h2>
      <Problem error={deliveries.error} />
      {!deliveries.data ? (
        <Loading what="deliveries" />
      ) : deliveries.data.data.length === 0 ? (
        <p class="muted">Nothing delivered yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Event</th>
              <th>Status</th>
              <th class="num">Attempts</th>
              <th>Last answer</th>
              <th>Next attempt</th>
              <th>Queued</th>
              <th>Delivered</th>
            </tr>
          </thead>
          <tbody>
            {deliveries.data.data.map((delivery) => (
              <tr key={delivery.id}>
                <td>
                  {delivery.event} <span class="muted">{delivery.event_id}</span>
                </td>
                <td>
                  <Badge status={delivery.status} />
                </td>
                <td class="num">{count(delivery.attempts)}</td>
                <td>
                  {delivery.last_status !== null && <code>HTTP {delivery.last_status}</code>}{" "}
                  {delivery.last_error && <span class="muted">{delivery.last_error}</span>}
                </td>
                <td>
                  <When at={delivery.status === "pending" ? delivery.next_attempt_at : null} />
                </td>
                <td>
                  <When at={delivery.created_at} />
                </td>
                <td>
                  <When at={delivery.delivered_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {deliveries.data && <Pager offset={offset} limit={PAGE} total={deliveries.data.total} onOffset={setOffset} />}
    </Page>
  );
}
