-- Dashboard sessions (api::admin::session): a browser's login, held in an HttpOnly cookie. Only
-- the SHA-256 digest of the cookie's secret is stored, as for admin tokens. A session opened with
-- an admin token names it, so revoking the token ends the session; one opened with the dashboard
-- password keeps SHA-256(password || cookie secret), so changing the password ends it. Ephemeral: `rungate db copy`
-- does not move them. The same columns as SQLite's 0006.
CREATE TABLE dashboard_sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    actor TEXT NOT NULL,
    admin_token_id TEXT,
    password_check TEXT,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
