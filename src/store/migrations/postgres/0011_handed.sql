-- Jobs claimed in their delivery's own commit and handed to a worker of the process that stored them
-- (issue 27): when, or NULL. That first attempt records no ledger intents before its effects (one
-- commit fewer before the answer), so a later attempt of such a job looks on the platform for any
-- effect that has no ledger row before doing it (queue/ledger.rs).
ALTER TABLE jobs ADD COLUMN handed_at BIGINT;
