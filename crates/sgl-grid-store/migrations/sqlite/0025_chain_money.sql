-- Money on the chain (issue 19). Operator payouts queued for the chain (each row left the
-- ledger in the same transaction that queued it; `batch_id` names the `Escrow.payBatch` that
-- pays it), the batches the grid sent or is sending (`tx_hash` once mined), and a lease's
-- escrow stream on the chain (its id, and the deposit moved into it out of the ledger).
CREATE TABLE chain_payouts (
    id TEXT PRIMARY KEY,
    wallet TEXT NOT NULL,
    to_address TEXT NOT NULL,
    amount BIGINT NOT NULL,
    batch_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX chain_payouts_by_batch ON chain_payouts (batch_id, created_at);
CREATE INDEX chain_payouts_by_wallet ON chain_payouts (wallet, created_at);

CREATE TABLE chain_payout_batches (
    batch_id TEXT PRIMARY KEY,
    payouts BIGINT NOT NULL,
    total BIGINT NOT NULL,
    tx_hash TEXT,
    created_at BIGINT NOT NULL,
    paid_at BIGINT
);

ALTER TABLE market_leases ADD COLUMN chain_stream TEXT;
ALTER TABLE market_leases ADD COLUMN chain_deposit BIGINT NOT NULL DEFAULT 0;
