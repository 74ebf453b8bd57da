-- The coordinator's first schema: ledger, API keys, registration codes, binary allowlist.
-- Times are Unix milliseconds; money is integer micro-units of the account's asset.

CREATE TABLE ledger_accounts (
    name TEXT PRIMARY KEY,
    asset TEXT NOT NULL,
    may_go_negative BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE ledger_transactions (
    id BIGSERIAL PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    memo TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE ledger_postings (
    transaction_id BIGINT NOT NULL REFERENCES ledger_transactions (id),
    account TEXT NOT NULL REFERENCES ledger_accounts (name),
    amount BIGINT NOT NULL,
    PRIMARY KEY (transaction_id, account)
);

CREATE INDEX ledger_postings_by_account ON ledger_postings (account);

CREATE TABLE api_keys (
    id BIGSERIAL PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    label TEXT NOT NULL,
    wallet TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE registration_codes (
    code_hash TEXT PRIMARY KEY,
    wallet TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    used_by_node TEXT
);

CREATE TABLE allowed_binaries (
    sha256 TEXT PRIMARY KEY,
    added_at BIGINT NOT NULL
);
