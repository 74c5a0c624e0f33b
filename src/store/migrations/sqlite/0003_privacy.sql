-- The audit trail and install-wide settings (SQLite).
-- The audit keeps keyed hashes of identities, never the emails themselves.

CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    action     TEXT    NOT NULL,
    platform   TEXT    NOT NULL,
    tenant     TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    place      TEXT,
    identities TEXT    NOT NULL,
    sessions   INTEGER NOT NULL,
    detail     TEXT
);
CREATE INDEX audit_at ON audit (at);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
