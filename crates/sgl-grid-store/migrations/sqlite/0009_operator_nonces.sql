-- Nonces of wallet-signed operator requests (unstake, withdraw, payout): each is used once, so
-- a captured request cannot be replayed. The primary key decides a race between replicas.
CREATE TABLE operator_nonces (
    wallet TEXT NOT NULL,
    nonce TEXT NOT NULL,
    used_at INTEGER NOT NULL,
    PRIMARY KEY (wallet, nonce)
);
