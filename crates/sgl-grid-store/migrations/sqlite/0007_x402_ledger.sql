-- The local x402 facilitator's ledger: token balances per (network, asset, address) in atomic
-- units (USDC: micro-dollars), and every EIP-3009 nonce used, with the settlement it belongs to.
CREATE TABLE x402_balances (
    network TEXT NOT NULL,
    asset TEXT NOT NULL,
    address TEXT NOT NULL,
    balance INTEGER NOT NULL CHECK (balance >= 0),
    PRIMARY KEY (network, asset, address)
);

CREATE TABLE x402_nonces (
    chain_id INTEGER NOT NULL,
    asset TEXT NOT NULL,
    from_address TEXT NOT NULL,
    nonce TEXT NOT NULL,
    tx_hash TEXT NOT NULL,
    network TEXT NOT NULL,
    to_address TEXT NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (chain_id, asset, from_address, nonce)
);
