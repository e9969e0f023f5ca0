-- Webhooks (SPEC §8). Secrets are AES-256-GCM blobs under the master key (they sign, so they
-- must be recoverable); during a rotation the previous secret still signs until
-- `previous_secret_until`, so receivers can switch without losing an event.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    encrypted_secret TEXT NOT NULL,
    secret_prefix TEXT NOT NULL,
    previous_encrypted_secret TEXT,
    previous_secret_until INTEGER,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- The outbox: one row per (event, webhook), written in the same transaction as the event, so a
-- crash or restart cannot lose a delivery that was due. `event_id` is the envelope's `id`.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    data TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries (webhook_id, created_at);
