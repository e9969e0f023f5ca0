// Policies: the list, one policy's versions with a diff between any two, and an editor whose
// save creates the next version. The gateway validates the document (CEL `when` expressions
// included); a refusal is shown in place, at the field and position it names.

import { diffLines } from "diff";
import { useEffect, useRef, useState } from "preact/hooks";

import { ApiError, type List, type Policy, type Session, get, holds, post, put } from "../api";
import { navigate } from "../router";
import { Loading, Page, Problem, When, useLive } from "../ui";

const META = new Set(["id", "name", "version", "created_at"]);

/** The editable document of a version: everything but its identity, keys sorted. */
function documentOf(policy: Policy): Record<string, unknown> {
  const document: Record<string, unknown> = {};
  for (const key of Object.keys(policy).sort()) {
    if (!META.has(key)) document[key] = policy[key];
  }
  return document;
}

const pretty = (value: unknown) => JSON.stringify(value, null, 2) + "\n";

export function PolicyList({ session }: { session: Session }) {
  const policies = useLive(() => get<List<Policy>>("/api/policies?limit=200"), [], 10_000);
  const [creating, setCreating] = useState(false);
  return (
    <Page
      title="Policies"
      actions={
        holds(session, "write") && (
          <button class="primary" onClick={() => setCreating(true)}>
            New policy
          </button>
        )
      }
    >
      {creating && <PolicyEditor initial={{ allowed_models: ["gpt-4o-mini"] }} onDone={() => setCreating(false)} />}
      <Problem error={policies.error} />
      {!policies.data ? (
        <Loading what="policies" />
      ) : (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Version</th>
              <th>Description</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {policies.data.data.map((policy) => (
              <tr key={policy.id}>
                <td>
                  <a href={`/policies/${policy.id}`}>{policy.name}</a>
                </td>
                <td>v{policy.version}</td>
                <td>{policy.description ?? <span class="muted">—</span>}</td>
                <td>
                  <When at={policy.created_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}

export function PolicyDetail({ id, session }: { id: string; session: Session }) {
  const versions = useLive(() => get<List<Policy>>(`/api/policies/${id}/versions?limit=1000`), [id], null);
  const [editing, setEditing] = useState(false);
  const [pair, setPair] = useState<[number, number] | null>(null);

  if (!versions.data) {
    return (
      <Page title="Policy">
        <Problem error={versions.error} />
        {!versions.error && <Loading what="the policy" />}
      </Page>
    );
  }
  const all = versions.data.data; // newest first
  const latest = all[0];
  const [from, to] = pair ?? [all[1]?.version ?? latest.version, latest.version];
  const version = (n: number) => all.find((v) => v.version === n) ?? latest;

  return (
    <Page
      title={
        <>
          {latest.name} <span class="muted">v{latest.version}</span>
        </>
      }
      actions={
        holds(session, "write") &&
        !editing && (
          <button class="primary" onClick={() => setEditing(true)}>
            Edit
          </button>
        )
      }
    >
      {editing ? (
        <PolicyEditor
          policy={latest}
          initial={documentOf(latest)}
          onDone={() => {
            setEditing(false);
            setPair(null);
            versions.reload();
          }}
        />
      ) : (
        <pre class="json">{pretty(documentOf(latest))}</pre>
      )}

      <h2>Versions</h2>
      {all.length < 2 ? (
        <p class="muted">Only one version so far.</p>
      ) : (
        <>
          <div class="compare">
            Compare
            <select aria-label="from version" value={from} onChange={(e) => setPair([Number((e.target as HTMLSelectElement).value), to])}>
              {all.map((v) => (
                <option value={v.version}>v{v.version}</option>
              ))}
            </select>
            →
            <select aria-label="to version" value={to} onChange={(e) => setPair([from, Number((e.target as HTMLSelectElement).value)])}>
              {all.map((v) => (
                <option value={v.version}>v{v.version}</option>
              ))}
            </select>
          </div>
          <Diff before={pretty(documentOf(version(from)))} after={pretty(documentOf(version(to)))} />
        </>
      )}
      <ul class="versions">
        {all.map((v) => (
          <li key={v.version}>
            v{v.version} · <When at={v.created_at} />
          </li>
        ))}
      </ul>
    </Page>
  );
}

function Diff({ before, after }: { before: string; after: string }) {
  const parts = diffLines(before, after);
  if (parts.every((part) => !part.added && !part.removed)) return <p class="muted">The two versions are the same.</p>;
  return (
    <pre class="diff" aria-label="diff">
      {parts.map((part, index) => {
        const sign = part.added ? "+" : part.removed ? "-" : " ";
        const lines = part.value.replace(/\n$/, "").split("\n");
        return (
          <span key={index} class={part.added ? "added" : part.removed ? "removed" : "same"}>
            {lines.map((line) => `${sign} ${line}\n`).join("")}
          </span>
        );
      })}
    </pre>
  );
}

/** A refusal located in the document: the field path and, for CEL, the line and column. */
interface Located {
  field: string;
  detail: string;
  expression?: string;
  line?: number;
  column?: number;
  /** Where the expression's string starts and ends in the editor's text, quotes included. */
  span?: [number, number];
  /** The editor line (from 1) that holds it. */
  documentLine?: number;
}

/** The value at `gates[0].when` in `document`, if there is one. */
function valueAt(document: unknown, field: string): unknown {
  let value: any = document;
  for (const part of field.match(/[^.[\]]+/g) ?? []) {
    if (value === null || typeof value !== "object") return undefined;
    value = value[/^\d+$/.test(part) ? Number(part) : part];
  }
  return value;
}

function locate(error: ApiError, document: unknown, text: string): Located | null {
  const found = /invalid (?:policy|body) at `([^`]+)`: (.*)$/s.exec(error.message);
  if (!found) return null;
  const [, field, detail] = found;
  const at = /line (\d+), column (\d+)/.exec(detail);
  const value = valueAt(document, field);
  const expression = typeof value === "string" ? value : undefined;
  const start = expression === undefined ? -1 : text.indexOf(JSON.stringify(expression));
  return {
    field,
    detail,
    expression,
    line: at ? Number(at[1]) : undefined,
    column: at ? Number(at[2]) : undefined,
    span: start >= 0 ? [start, start + JSON.stringify(expression).length] : undefined,
    documentLine: start >= 0 ? text.slice(0, start).split("\n").length : undefined,
  };
}

function PolicyEditor({ policy, initial, onDone }: { policy?: Policy; initial: Record<string, unknown>; onDone: () => void }) {
  const [name, setName] = useState("");
  const [text, setText] = useState(pretty(initial));
  const [error, setError] = useState<Error>();
  const [located, setLocated] = useState<Located | null>(null);
  const [busy, setBusy] = useState(false);
  const editor = useRef<HTMLTextAreaElement>(null);

  // Put the cursor on what the gateway refused.
  useEffect(() => {
    if (!located?.span || !editor.current) return;
    editor.current.focus();
    editor.current.setSelectionRange(located.span[0], located.span[1]);
  }, [located]);

  const save = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    setLocated(null);
    let document: Record<string, unknown>;
    try {
      document = JSON.parse(text);
    } catch (err) {
      setError(new ApiError(0, "invalid_json", `The document is not valid JSON: ${(err as Error).message}`));
      return;
    }
    // An update merges into the current version; a field deleted in the editor is sent as null.
    const body: Record<string, unknown> = { ...document };
    for (const key of Object.keys(initial)) if (!(key in document)) body[key] = null;
    setBusy(true);
    try {
      if (policy) await put(`/api/policies/${policy.id}`, body);
      else {
        const created = await post<{ data: Policy }>("/api/policies", { ...document, name });
        navigate(`/policies/${created.data.id}`);
      }
      onDone();
    } catch (err) {
      setError(err as Error);
      if (err instanceof ApiError) setLocated(locate(err, document, text));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="editor card" onSubmit={save}>
      {!policy && (
        <label>
          Name
          <input name="name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} required />
        </label>
      )}
      <label>
        Document (JSON){policy && <span class="muted"> — saving creates v{policy.version + 1}; running runs keep their version</span>}
        <textarea
          ref={editor}
          name="document"
          spellcheck={false}
          rows={Math.min(Math.max(text.split("\n").length + 1, 8), 32)}
          value={text}
          onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
          aria-invalid={error ? "true" : undefined}
        />
      </label>
      {located ? (
        <div class="problem located" role="alert">
          <p>
            <code>{located.field}</code>
            {located.documentLine !== undefined && <span class="muted"> (document line {located.documentLine})</span>}: {located.detail}
          </p>
          {located.expression !== undefined && (
            <pre class="caret">
              {located.expression.split("\n")[(located.line ?? 1) - 1] ?? located.expression}
              {located.column !== undefined && "\n" + " ".repeat(Math.max(located.column - 1, 0)) + "^"}
            </pre>
          )}
        </div>
      ) : (
        <Problem error={error} />
      )}
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Saving…" : policy ? "Save new version" : "Create policy"}
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
