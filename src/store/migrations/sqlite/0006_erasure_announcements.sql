-- Erasure announcements (SQLite): PostgreSQL carries them with NOTIFY; SQLite has no such channel, so an
-- erasure run by one process (`replaydesk forget`) is written here and every other process on the same
-- file (`replaydesk serve`) polls for it and drops its cache. Rows name the customer by the audit
-- trail's keyed hash, never by email, and are deleted after an hour.

CREATE TABLE erasure_announcements (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    payload TEXT    NOT NULL
);
