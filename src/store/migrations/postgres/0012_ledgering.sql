-- How a job's attempts keep the effect ledger (issue 27; queue/ledger.rs, "First attempts"):
-- 'unrun' (no attempt has done anything yet: the next claim runs a first attempt, with no intents),
-- 'first_run' (an attempt with no intents holds it, or held it and may have done something),
-- 'after_first_run' (intents, and an effect without a row is looked for on the platform first), or
-- 'intents' (intents with random markers). Jobs stored before this migration keep 'intents' (one
-- handed in its delivery's commit, `handed_at` set, is read as 'after_first_run'), and so do jobs
-- an older binary stores during a rolling upgrade.
ALTER TABLE jobs ADD COLUMN ledgering TEXT NOT NULL DEFAULT 'intents';
