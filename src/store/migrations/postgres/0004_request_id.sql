-- The inbound request id (`x-request-id`) a job was enqueued under, so the worker's logs and spans
-- carry it (PostgreSQL). NULL for jobs enqueued outside a request (the CLI) or before this migration.

ALTER TABLE jobs ADD COLUMN request_id TEXT;
