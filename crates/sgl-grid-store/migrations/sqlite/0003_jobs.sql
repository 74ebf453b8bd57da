-- Jobs: one row per dispatch attempt, with what was held and what was billed. Prompts and
-- replies are never stored.

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    api_key_id INTEGER NOT NULL,
    model TEXT NOT NULL,
    sealed_by_caller INTEGER NOT NULL,
    stream INTEGER NOT NULL,
    status TEXT NOT NULL,
    max_tokens INTEGER NOT NULL,
    held_micros INTEGER NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    billed_micros INTEGER,
    error TEXT,
    created_at INTEGER NOT NULL,
    finished_at INTEGER
);

CREATE INDEX jobs_by_node_status ON jobs (node_id, status);
