-- General compute (issue 16): signed jobs as a durable queue. A job is split into slices; each
-- slice is run by `wanted` attempts of nodes of different operators, whose receipts must agree.
-- A canary is a job the grid made itself, for one node (`target_node`), whose answer it knows.
CREATE TABLE compute_jobs (
    id TEXT PRIMARY KEY,
    api_key_id BIGINT,
    account_id BIGINT,
    requester TEXT NOT NULL,
    class TEXT NOT NULL,
    bundle_hash TEXT NOT NULL,
    manifest TEXT NOT NULL,
    signature TEXT NOT NULL,
    redundancy BIGINT NOT NULL,
    slice_count BIGINT NOT NULL,
    price_micros_per_gfuel BIGINT NOT NULL,
    attempt_hold_micros BIGINT NOT NULL,
    lease_ms BIGINT NOT NULL,
    escrow_micros BIGINT NOT NULL,
    charged_micros BIGINT NOT NULL DEFAULT 0,
    refunded_micros BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    target_node TEXT,
    expected TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX compute_jobs_by_key ON compute_jobs (account_id, created_at);
CREATE INDEX compute_jobs_open ON compute_jobs (state, created_at);

CREATE TABLE compute_slices (
    job_id TEXT NOT NULL,
    idx BIGINT NOT NULL,
    state TEXT NOT NULL,
    wanted BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    result_digest TEXT,
    PRIMARY KEY (job_id, idx)
);

CREATE TABLE compute_attempts (
    id BIGSERIAL PRIMARY KEY,
    job_id TEXT NOT NULL,
    slice BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    node_id TEXT NOT NULL,
    operator TEXT NOT NULL,
    state TEXT NOT NULL,
    leased_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT,
    result_digest TEXT,
    fuel BIGINT,
    receipt TEXT,
    stdout TEXT,
    stderr TEXT,
    error TEXT,
    charged_micros BIGINT NOT NULL DEFAULT 0,
    UNIQUE (job_id, slice, attempt)
);
CREATE INDEX compute_attempts_by_slice ON compute_attempts (job_id, slice);
CREATE INDEX compute_attempts_live ON compute_attempts (state, expires_at);
CREATE INDEX compute_attempts_by_node ON compute_attempts (node_id, state);
