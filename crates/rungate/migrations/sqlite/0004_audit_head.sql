-- The head of each run's audit chain, kept on the run in the same transaction as every append,
-- so verification can tell a chain that ends early (its last events dropped) from a whole one.
ALTER TABLE runs ADD COLUMN audit_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN audit_head TEXT;
UPDATE runs SET
    audit_seq = COALESCE((SELECT MAX(seq) FROM audit_events e WHERE e.run_id = runs.id), 0),
    audit_head = (SELECT hash FROM audit_events e WHERE e.run_id = runs.id ORDER BY seq DESC LIMIT 1);
