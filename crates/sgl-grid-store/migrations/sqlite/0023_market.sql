-- The order book (issue 19): a requester's order for work that lasts (its hold in
-- `escrow:job:{order}`), one bid per node per order (`seq` orders bids placed in the same
-- millisecond; a re-bid takes a new one), and the lease that binds the winner, its deposit in
-- `escrow:job:{lease}` streaming to the provider's operator by the second (`paid_micros`
-- settled so far, never above `deposit_micros`).
CREATE TABLE market_orders (
    id TEXT PRIMARY KEY,
    api_key_id INTEGER NOT NULL,
    account_id INTEGER NOT NULL,
    requester_wallet TEXT,
    class TEXT NOT NULL,
    cpu_cores INTEGER NOT NULL,
    memory_mb INTEGER NOT NULL,
    gpus INTEGER NOT NULL,
    duration_secs INTEGER NOT NULL,
    max_price_per_hour INTEGER NOT NULL,
    bid_window_secs INTEGER NOT NULL,
    held_micros INTEGER NOT NULL,
    refunded_micros INTEGER NOT NULL DEFAULT 0,
    job_id TEXT,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    window_ends_at INTEGER NOT NULL,
    decided_at INTEGER
);
CREATE INDEX market_orders_by_account ON market_orders (account_id, created_at);
CREATE INDEX market_orders_by_state ON market_orders (state, window_ends_at);

CREATE TABLE market_bids (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    operator TEXT NOT NULL,
    price_per_hour INTEGER NOT NULL,
    placed_at INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    lost_reason TEXT,
    winning_price INTEGER,
    lease_id TEXT,
    decided_at INTEGER,
    UNIQUE (order_id, node_id)
);
CREATE INDEX market_bids_by_node ON market_bids (node_id, placed_at);

CREATE TABLE market_leases (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    api_key_id INTEGER NOT NULL,
    account_id INTEGER NOT NULL,
    node_id TEXT NOT NULL,
    operator TEXT NOT NULL,
    price_per_hour INTEGER NOT NULL,
    deposit_micros INTEGER NOT NULL,
    paid_micros INTEGER NOT NULL DEFAULT 0,
    refunded_micros INTEGER NOT NULL DEFAULT 0,
    settlements INTEGER NOT NULL DEFAULT 0,
    job_id TEXT,
    state TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    settled_at INTEGER NOT NULL,
    ended_at INTEGER
);
CREATE INDEX market_leases_by_state ON market_leases (state, ends_at);
CREATE INDEX market_leases_by_node ON market_leases (node_id, started_at);

-- A compute job bound to an order: '' while the order is open (no node leases it), then the
-- lease's node (only it leases it); NULL for every other job.
ALTER TABLE compute_jobs ADD COLUMN market_node TEXT;
