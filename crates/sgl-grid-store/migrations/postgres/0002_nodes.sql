-- Registered nodes, their attestation challenges, custom prices and tamper evidence.

CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL UNIQUE,
    wallet TEXT NOT NULL,
    tee_type TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    previous_token_hash TEXT,
    token_expires_at BIGINT NOT NULL,
    registered_at BIGINT NOT NULL,
    cpu_cores BIGINT NOT NULL,
    ram_gb DOUBLE PRECISION NOT NULL,
    gpu_model TEXT NOT NULL,
    manifest TEXT,
    off_grid BIGINT NOT NULL DEFAULT 0,
    attested BIGINT NOT NULL DEFAULT 0,
    binary_hash TEXT,
    reputation DOUBLE PRECISION NOT NULL DEFAULT 0.5,
    jobs_completed BIGINT NOT NULL DEFAULT 0,
    jobs_failed BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX nodes_by_wallet ON nodes (wallet);

CREATE TABLE node_challenges (
    node_id TEXT PRIMARY KEY REFERENCES nodes (id),
    challenge TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE node_prices (
    node_id TEXT NOT NULL REFERENCES nodes (id),
    model TEXT NOT NULL,
    input_per_m DOUBLE PRECISION NOT NULL,
    output_per_m DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (node_id, model)
);

CREATE TABLE tamper_events (
    id BIGSERIAL PRIMARY KEY,
    node_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    evidence TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
