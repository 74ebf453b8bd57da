-- Registered nodes, their attestation challenges, custom prices and tamper evidence.

CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL UNIQUE,
    wallet TEXT NOT NULL,
    tee_type TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    previous_token_hash TEXT,
    token_expires_at INTEGER NOT NULL,
    registered_at INTEGER NOT NULL,
    cpu_cores INTEGER NOT NULL,
    ram_gb REAL NOT NULL,
    gpu_model TEXT NOT NULL,
    manifest TEXT,
    off_grid INTEGER NOT NULL DEFAULT 0,
    attested INTEGER NOT NULL DEFAULT 0,
    binary_hash TEXT,
    reputation REAL NOT NULL DEFAULT 0.5,
    jobs_completed INTEGER NOT NULL DEFAULT 0,
    jobs_failed INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX nodes_by_wallet ON nodes (wallet);

CREATE TABLE node_challenges (
    node_id TEXT PRIMARY KEY REFERENCES nodes (id),
    challenge TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE node_prices (
    node_id TEXT NOT NULL REFERENCES nodes (id),
    model TEXT NOT NULL,
    input_per_m REAL NOT NULL,
    output_per_m REAL NOT NULL,
    PRIMARY KEY (node_id, model)
);

CREATE TABLE tamper_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    evidence TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
