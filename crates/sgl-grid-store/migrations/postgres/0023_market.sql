-- The order book (issue 19): a requester's order for work that lasts (its hold in
-- `escrow:job:{order}`), one bid per node per order (`seq` orders bids placed in the same
-- millisecond; a re-bid takes a new one), and the lease that binds the winner, its deposit in
-- `escrow:job:{lease}` streaming to the provider's operator by the second (`paid_micros`
-- settled so far, never above `deposit_micros`).
CREATE TABLE market_orders (
    id TEXT PRIMARY KEY,
    api_key_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    requester_wallet TEXT,
    class TEXT NOT NULL,
    cpu_cores BIGINT NOT NULL,
    memory_mb BIGINT NOT NULL,
    gpus BIGINT NOT NULL,
    duration_secs BIGINT NOT NULL,
    max_price_per_hour BIGINT NOT NULL,
    bid_window_secs BIGINT NOT NULL,
    held_micros BIGINT NOT NULL,
    refunded_micros BIGINT NOT NULL DEFAULT 0,
    job_id TEXT,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    window_ends_at BIGINT NOT NULL,
    decided_at BIGINT
);
CREATE INDEX market_orders_by_account ON market_orders (account_id, created_at);
CREATE INDEX market_orders_by_state ON market_orders (state, window_ends_at);

CREATE TABLE market_bids (
    id BIGSERIAL PRIMARY KEY,
    order_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    operator TEXT NOT NULL,
    price_per_hour BIGINT NOT NULL,
    placed_at BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    state TEXT NOT NULL,
    lost_reason TEXT,
    winning_price BIGINT,
    lease_id TEXT,
    decided_at BIGINT,
    UNIQUE (order_id, node_id)
);
CREATE INDEX market_bids_by_node ON market_bids (node_id, placed_at);

CREATE TABLE market_leases (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    api_key_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    node_id TEXT NOT NULL,
    operator TEXT NOT NULL,
    price_per_hour BIGINT NOT NULL,
    deposit_micros BIGINT NOT NULL,
    paid_micros BIGINT NOT NULL DEFAULT 0,
    refunded_micros BIGINT NOT NULL DEFAULT 0,
    settlements BIGINT NOT NULL DEFAULT 0,
    job_id TEXT,
    state TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    settled_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX market_leases_by_state ON market_leases (state, ends_at);
CREATE INDEX market_leases_by_node ON market_leases (node_id, started_at);

-- A compute job bound to an order: '' while the order is open (no node leases it), then the
-- lease's node (only it leases it); NULL for every other job.
ALTER TABLE compute_jobs ADD COLUMN market_node TEXT;
