-- The PostgreSQL schema: the same tables and columns as SQLite's migrations 0001–0005, so one
-- row mapper serves both backends and `rungate db copy` moves rows column for column. Integers
-- are BIGINT, JSON documents TEXT (they are written and read whole), blobs BYTEA.
CREATE TABLE provider_keys (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    name TEXT NOT NULL UNIQUE,
    encrypted_key TEXT NOT NULL,
    key_suffix TEXT NOT NULL,
    base_url TEXT,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE policies (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    current_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE policy_versions (
    policy_id TEXT NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (policy_id, version)
);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    team TEXT,
    policy_id TEXT,
    provider_keys TEXT NOT NULL,
    status TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE admin_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    scopes TEXT NOT NULL,
    revoked BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    team TEXT NOT NULL,
    policy_id TEXT,
    policy_version BIGINT,
    status TEXT NOT NULL,
    auto BIGINT NOT NULL,
    spend_nanos BIGINT NOT NULL DEFAULT 0,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    steps_count BIGINT NOT NULL DEFAULT 0,
    started_at BIGINT NOT NULL,
    last_activity_at BIGINT NOT NULL,
    idle_timeout_ms BIGINT,
    ended_at BIGINT,
    ended_reason TEXT,
    metadata TEXT NOT NULL,
    budget_limit_nanos BIGINT,
    audit_seq BIGINT NOT NULL DEFAULT 0,
    audit_head TEXT,
    -- The sums of the run's rows in `run_holds` (below), kept on the run so admission reads the
    -- whole budget — spend and every gateway's holds — from the one row it locks.
    reserved_nanos BIGINT NOT NULL DEFAULT 0,
    reserved_tokens BIGINT NOT NULL DEFAULT 0,
    in_flight BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_status ON runs (status);
CREATE INDEX runs_by_agent ON runs (agent_id, started_at);
CREATE INDEX runs_by_start ON runs (started_at);

CREATE TABLE steps (
    id TEXT NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs(id),
    agent_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_nanos BIGINT NOT NULL,
    latency_ms BIGINT NOT NULL,
    status TEXT NOT NULL,
    http_status BIGINT,
    error_message TEXT,
    request TEXT,
    response TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, id)
);
CREATE INDEX steps_by_agent ON steps (agent_id, created_at);
CREATE INDEX steps_by_created ON steps (created_at);

CREATE TABLE ledger (
    run_id TEXT NOT NULL REFERENCES runs(id),
    step_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount_nanos BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, step_id, kind)
);

CREATE TABLE audit_events (
    run_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    data TEXT NOT NULL,
    at BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE gates (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    agent_id TEXT NOT NULL,
    trigger TEXT NOT NULL,
    rule TEXT NOT NULL,
    tool TEXT NOT NULL,
    args TEXT NOT NULL,
    approver_channel TEXT,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT,
    reason TEXT,
    consumed_at BIGINT,
    held_status BIGINT,
    held_content_type TEXT,
    held_body BYTEA,
    held_step_id TEXT
);
CREATE INDEX gates_by_run ON gates (run_id, created_at);
CREATE INDEX gates_by_status ON gates (status, expires_at);
CREATE INDEX gates_by_created ON gates (created_at);

CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    encrypted_secret TEXT NOT NULL,
    secret_prefix TEXT NOT NULL,
    previous_encrypted_secret TEXT,
    previous_secret_until BIGINT,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    data TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_status BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries (webhook_id, created_at);

-- What only several gateways need: the holds of calls in flight, kept in the database so every
-- gateway's admission sees them. A hold belongs to the gateway that made it, which renews
-- `expires_at` while it lives; a gateway that dies stops renewing, its holds expire, and a
-- surviving gateway's sweeper releases them (subtracting them from the run's counters).
CREATE TABLE run_holds (
    run_id TEXT NOT NULL REFERENCES runs(id),
    hold_id TEXT NOT NULL,
    gateway_id TEXT NOT NULL,
    amount_nanos BIGINT NOT NULL,
    tokens BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, hold_id)
);
CREATE INDEX run_holds_by_gateway ON run_holds (gateway_id);
CREATE INDEX run_holds_by_expiry ON run_holds (expires_at);

-- Tool calls the model proposed in a run, per tool: they count toward `tool_limits` with the
-- reported tool steps, whichever gateway saw the answer.
CREATE TABLE run_tool_proposals (
    run_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    proposals BIGINT NOT NULL,
    PRIMARY KEY (run_id, tool)
);

-- What each agent's steps cost per minute: the sliding hour of `agent_hourly_limit_usd`,
-- shared by every gateway, in at most 61 rows an agent.
CREATE TABLE agent_spend_minutes (
    agent_id TEXT NOT NULL,
    minute BIGINT NOT NULL,
    cost_nanos BIGINT NOT NULL,
    PRIMARY KEY (agent_id, minute)
);

-- Admitted calls per 100 ms per rate-limit window (`run:<id>` or `agent:<id>`): the sliding
-- minute of `rate_limits`, shared by every gateway, in at most 601 rows a window however busy
-- it is (a row per call would make every admission count a minute of calls). `first_at` is
-- the bucket's earliest call, for `Retry-After`.
CREATE TABLE rate_buckets (
    window_key TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    calls BIGINT NOT NULL,
    tokens BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    PRIMARY KEY (window_key, bucket)
);
