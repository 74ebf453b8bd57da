-- Callers who pay with a wallet (x402, MPP) get one account per wallet: its root API key, whose
-- credits hold what they paid and did not spend. The primary key makes the binding unique even
-- when two replicas see a wallet's first payment at once.
CREATE TABLE wallet_accounts (
    wallet TEXT PRIMARY KEY,
    api_key_id INTEGER NOT NULL REFERENCES api_keys (id),
    created_at INTEGER NOT NULL
);

-- An operator's request to unstake: the amount moved out of its stake into unbonding, and when
-- it may be withdrawn. One open request per wallet.
CREATE TABLE unstake_requests (
    wallet TEXT PRIMARY KEY,
    amount INTEGER NOT NULL CHECK (amount > 0),
    requested_at INTEGER NOT NULL,
    available_at INTEGER NOT NULL
);

-- Stake taken from an operator for a proven fault, with the evidence that proves it.
CREATE TABLE slashes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    wallet TEXT NOT NULL,
    node_id TEXT,
    job_id TEXT,
    reason TEXT NOT NULL,
    evidence TEXT NOT NULL,
    amount INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX slashes_wallet ON slashes (wallet);
