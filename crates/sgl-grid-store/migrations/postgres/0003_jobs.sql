-- Jobs: one row per dispatch attempt, with what was held and what was billed. Prompts and
-- replies are never stored.

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    api_key_id BIGINT NOT NULL,
    model TEXT NOT NULL,
    sealed_by_caller BIGINT NOT NULL,
    stream BIGINT NOT NULL,
    status TEXT NOT NULL,
    max_tokens BIGINT NOT NULL,
    held_micros BIGINT NOT NULL,
    prompt_tokens BIGINT,
    completion_tokens BIGINT,
    billed_micros BIGINT,
    error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);

CREATE INDEX jobs_by_node_status ON jobs (node_id, status);
