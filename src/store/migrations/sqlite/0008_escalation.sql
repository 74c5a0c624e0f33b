-- Escalations to an issue tracker (issue 25), SQLite.
-- One row per (source, session): the ticket, thread or message an agent escalated from, and the customer
-- session it is about ('' when none was found). The row is the once-ness: the first job to insert it owns
-- it (`owner_job`), any other asker reads its issue. `state` is 'intent' until the issue and its link are
-- recorded ('done'). `customer_hash` is the audit trail's keyed hash of the customer (never the address),
-- so an erasure finds the links replaydesk made for them (`link_id`, removed by the erasure: `unlinked_at`).
-- `created` is 1 when replaydesk made the issue, 0 when it linked an existing one.

CREATE TABLE escalations (
    source        TEXT    NOT NULL,
    session       TEXT    NOT NULL,
    tracker       TEXT    NOT NULL,
    owner_job     INTEGER NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('intent', 'done')),
    customer_hash TEXT    NOT NULL,
    tag           TEXT    NOT NULL,
    issue_id      TEXT,
    issue_key     TEXT,
    issue_url     TEXT,
    created       INTEGER NOT NULL DEFAULT 0,
    link_id       TEXT,
    unlinked_at   INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (source, session)
) WITHOUT ROWID;

CREATE INDEX escalations_customer ON escalations (customer_hash);
