-- Price table versions (providers::pricing): each LiteLLM import with its whole table, the newest
-- in use; a provider key's own prices; and on every priced step the version that priced it
-- (a table version, `config`, or `key:<provider key id>`; NULL when unpriced).
CREATE TABLE price_tables (
    version TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    models INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    prices TEXT NOT NULL,
    imported_at INTEGER NOT NULL
);
ALTER TABLE provider_keys ADD COLUMN pricing TEXT;
ALTER TABLE steps ADD COLUMN price_version TEXT;
