-- The dashboard's usage report (`Store::account_usage`) reads an account's jobs by key and time.
CREATE INDEX jobs_by_key_created ON jobs (api_key_id, created_at);
-- The admin overview's recent tamper events, newest first.
CREATE INDEX tamper_events_by_time ON tamper_events (created_at);
