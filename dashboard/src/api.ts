// The admin API as the dashboard uses it. The session lives in an HttpOnly cookie the page
// cannot read; every request sends it (same origin) and marks itself with
// `x-rungate-dashboard: 1`, which the gateway requires of cookie-authenticated writes (a
// cross-site form cannot set a custom header, so this is the CSRF guard).

export type Scope = "read" | "write" | "approve";

export interface Session {
  actor: string;
  scopes: Scope[];
  expires_at: string | null;
}

export interface Tokens {
  input: number;
  output: number;
}

export interface Run {
  id: string;
  agent_id: string;
  team: string | null;
  status: "running" | "completed" | "stopped";
  auto: boolean;
  policy_id: string | null;
  policy_version: number | null;
  spend_usd: number;
  budget_limit_usd: number | null;
  budget_remaining_usd: number | null;
  tokens: Tokens;
  total_tokens: number;
  steps_count: number;
  started_at: string;
  last_activity_at: string;
  ended_at: string | null;
  ended_reason: string | null;
}

export interface Span {
  span_id: string;
  parent_span_id: string | null;
  name: string;
  start_time: string;
  end_time: string;
  duration_ms: number;
  status: string;
  attributes: Record<string, unknown>;
}

export interface Trace {
  run_id: string;
  trace_id: string;
  spans: Span[];
}

export interface LedgerEntry {
  kind: string;
  step_id: string | null;
  amount_usd: number;
  created_at: string;
}

export interface Ledger extends List<LedgerEntry> {
  sum_usd: number;
  run_spend_usd: number;
}

export interface AuditVerification {
  valid: boolean;
  events: number;
  head?: string | null;
  broken_at_seq?: number;
  reason?: string;
  event?: { seq: number; kind: string; actor: string } | null;
}

export interface Gate {
  id: string;
  run_id: string;
  agent_id: string;
  status: "pending" | "approved" | "rejected" | "expired";
  trigger: string;
  rule: string;
  tool: string | null;
  proposed_action: { tool?: string; args?: unknown } | null;
  approver_channel: string | null;
  holds_answer: boolean;
  created_at: string;
  expires_at: string | null;
  decided_at: string | null;
  decided_by: string | null;
  reason: string | null;
  consumed_at: string | null;
}

export interface Budget {
  hard_limit_usd?: number;
  alert_at?: number;
  [field: string]: unknown;
}

export interface Policy {
  id: string;
  name: string;
  version: number;
  created_at: string;
  description?: string;
  budget?: Budget;
  [field: string]: unknown;
}

export interface Agent {
  id: string;
  name: string;
  status: string;
  team: string | null;
  policy_id: string | null;
  key_prefix: string;
  created_at: string;
  api_key?: string;
}

export interface AgentStats {
  agent_id: string;
  total_runs: number;
  total_cost_usd: number;
  total_tokens: number;
  total_steps: number;
}

export interface ProviderKey {
  id: string;
  provider: string;
  name: string;
  base_url: string | null;
  status: string;
  masked_key: string;
  created_at: string;
  updated_at: string;
}

export interface Webhook {
  id: string;
  name: string;
  url: string;
  events: string[];
  status: "active" | "disabled";
  secret_prefix: string;
  created_at: string;
  updated_at: string;
}

export interface Delivery {
  id: string;
  event_id: string;
  event: string;
  status: string;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
  delivered_at: string | null;
  created_at: string;
  data: unknown;
}

export interface CostRow {
  group: string;
  cost_usd: number;
  steps: number;
  input_tokens: number;
  output_tokens: number;
}

export interface List<T> {
  data: T[];
  total: number;
}

/** A refusal from the gateway, with the stable `code` and message of its JSON error. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Called when the session is gone (expired, signed out elsewhere, token revoked). */
let onUnauthorized: () => void = () => {};
export function whenUnauthorized(handler: () => void) {
  onUnauthorized = handler;
}

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { "x-rungate-dashboard": "1" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: reported below with the status
  }
  if (!response.ok) {
    const error = json?.error ?? {};
    if (response.status === 401 && path !== "/api/session") onUnauthorized();
    throw new ApiError(
      response.status,
      error.code ?? error.type ?? `http_${response.status}`,
      error.message ?? (text || response.statusText),
    );
  }
  return json as T;
}

export const get = <T>(path: string) => call<T>("GET", path);
export const post = <T>(path: string, body: unknown = {}) => call<T>("POST", path, body);
export const put = <T>(path: string, body: unknown) => call<T>("PUT", path, body);

/** `?a=1&b=2` from the set fields of `params`. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export const signIn = (secret: string) =>
  post<{ data: Session }>("/api/session", secret.startsWith("rg_adm_") ? { token: secret } : { password: secret });
export const currentSession = () => get<{ data: Session }>("/api/session");
export const signOut = () => call<void>("DELETE", "/api/session");

/** Whether the session holds `scope` (`write` implies `read`, as on the gateway). */
export function holds(session: Session | null, scope: Scope): boolean {
  if (!session) return false;
  return session.scopes.includes(scope) || (scope === "read" && session.scopes.includes("write"));
}
