// Provider keys, masked: the gateway never returns a secret after creation, only its suffix.

import { type List, type ProviderKey, get } from "../api";
import { Badge, Loading, Page, Problem, When, useLive } from "../ui";

export function ProviderKeys() {
  const keys = useLive(() => get<List<ProviderKey>>("/api/provider-keys?limit=200"), [], 10_000);
  return (
    <Page title="Provider keys">
      <p class="muted">
        Keys are encrypted at rest and shown masked. Add or rotate one with <code>rungate keys add &lt;provider&gt;</code> (secret
        on stdin), so it never passes through a browser.
      </p>
      <Problem error={keys.error} />
      {!keys.data ? (
        <Loading what="provider keys" />
      ) : keys.data.data.length === 0 ? (
        <p class="muted">No provider keys: calls go to the built-in demo provider.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Provider</th>
              <th>Key</th>
              <th>Base URL</th>
              <th>Status</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {keys.data.data.map((key) => (
              <tr key={key.id}>
                <td>{key.name}</td>
                <td>{key.provider}</td>
                <td>
                  <code>{key.masked_key}</code>
                </td>
                <td>{key.base_url ?? <span class="muted">default</span>}</td>
                <td>
                  <Badge status={key.status} />
                </td>
                <td>
                  <When at={key.updated_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}
