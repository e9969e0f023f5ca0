-- Approval gates (SPEC §6). A gate's held answer (proposed-action gates) lives in the row, so an
-- approved retry is answered from here without a second upstream call.
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
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    decided_at INTEGER,
    decided_by TEXT,
    reason TEXT,
    consumed_at INTEGER,
    held_status INTEGER,
    held_content_type TEXT,
    held_body BLOB,
    held_step_id TEXT
);
CREATE INDEX gates_by_run ON gates (run_id, created_at);
CREATE INDEX gates_by_status ON gates (status, expires_at);
CREATE INDEX gates_by_created ON gates (created_at);
