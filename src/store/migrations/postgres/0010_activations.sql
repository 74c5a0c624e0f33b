-- FullStory Activations, counted per billing cycle for every replica (issue 24).
-- * `activation_cycles`: one row per cycle (its first day, `YYYY-MM-DD` UTC): what was spent
--   automatically and on request, the one counter every replica's reservation is checked against
--   (an atomic conditional UPDATE, so the budget is never passed), when FullStory said the
--   organisation's quota was used up, and which alerts (80 %, 100 %) were sent this cycle.
-- * `activation_days`: the same spending by day, kind (events, summary, context; list_sessions is
--   counted here too but is not metered) and purpose (automatic, on_request), for `replaydesk activations`.
CREATE TABLE activation_cycles (
    cycle        TEXT    PRIMARY KEY,
    automatic    BIGINT  NOT NULL DEFAULT 0,
    on_request   BIGINT  NOT NULL DEFAULT 0,
    exhausted_at BIGINT,
    alerted      BIGINT  NOT NULL DEFAULT 0
);

CREATE TABLE activation_days (
    cycle   TEXT   NOT NULL,
    day     TEXT   NOT NULL,
    kind    TEXT   NOT NULL,
    purpose TEXT   NOT NULL,
    count   BIGINT NOT NULL,
    PRIMARY KEY (cycle, day, kind, purpose)
);

-- * `session_data`: a session's events and summaries as FullStory answered them (JSON), shared by every
--   replica so the same session costs one Activation however many answers, previews and sidebars show
--   it. Kept `fullstory.session_cache_ttl` (stale rows are ignored and deleted on the next write);
--   dropped by an erasure of the customer whose sessions they are.
CREATE TABLE session_data (
    session_id TEXT   NOT NULL,
    what       TEXT   NOT NULL,
    body       TEXT   NOT NULL,
    stored_at  BIGINT NOT NULL,
    PRIMARY KEY (session_id, what)
);
CREATE INDEX session_data_stored_at ON session_data (stored_at);
