-- General compute (issue 16): signed jobs as a durable queue. A job is split into slices; each
-- slice is run by `wanted` attempts of nodes of different operators, whose receipts must agree.
-- A canary is a job the grid made itself, for one node (`target_node`), whose answer it knows.
CREATE TABLE compute_jobs (
    id TEXT PRIMARY KEY,
    api_key_id INTEGER,
    account_id INTEGER,
    requester TEXT NOT NULL,
    class TEXT NOT NULL,
    bundle_hash TEXT NOT NULL,
    manifest TEXT NOT NULL,
    signature TEXT NOT NULL,
    redundancy INTEGER NOT NULL,
    slice_count INTEGER NOT NULL,
    price_micros_per_gfuel INTEGER NOT NULL,
    attempt_hold_micros INTEGER NOT NULL,
    lease_ms INTEGER NOT NULL,
    escrow_micros INTEGER NOT NULL,
    charged_micros INTEGER NOT NULL DEFAULT 0,
    refunded_micros INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    target_node TEXT,
    expected TEXT,
    error TEXT,
    created_at INTEGER NOT NULL,
    ended_at INTEGER
);
CREATE INDEX compute_jobs_by_key ON compute_jobs (account_id, created_at);
CREATE INDEX compute_jobs_open ON compute_jobs (state, created_at);

CREATE TABLE compute_slices (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    state TEXT NOT NULL,
    wanted INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    result_digest TEXT,
    PRIMARY KEY (job_id, idx)
);

CREATE TABLE compute_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    slice INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    node_id TEXT NOT NULL,
    operator TEXT NOT NULL,
    state TEXT NOT NULL,
    leased_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ended_at INTEGER,
    result_digest TEXT,
    fuel INTEGER,
    receipt TEXT,
    stdout TEXT,
    stderr TEXT,
    error TEXT,
    charged_micros INTEGER NOT NULL DEFAULT 0,
    UNIQUE (job_id, slice, attempt)
);
CREATE INDEX compute_attempts_by_slice ON compute_attempts (job_id, slice);
CREATE INDEX compute_attempts_live ON compute_attempts (state, expires_at);
CREATE INDEX compute_attempts_by_node ON compute_attempts (node_id, state);
