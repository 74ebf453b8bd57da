-- The coordinator's first schema: ledger, API keys, registration codes, binary allowlist.
-- Times are Unix milliseconds; money is integer micro-units of the account's asset.

CREATE TABLE ledger_accounts (
    name TEXT PRIMARY KEY,
    asset TEXT NOT NULL,
    may_go_negative INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE ledger_transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    memo TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE ledger_postings (
    transaction_id INTEGER NOT NULL REFERENCES ledger_transactions (id),
    account TEXT NOT NULL REFERENCES ledger_accounts (name),
    amount INTEGER NOT NULL,
    PRIMARY KEY (transaction_id, account)
);

CREATE INDEX ledger_postings_by_account ON ledger_postings (account);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    label TEXT NOT NULL,
    wallet TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE registration_codes (
    code_hash TEXT PRIMARY KEY,
    wallet TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    used_by_node TEXT
);

CREATE TABLE allowed_binaries (
    sha256 TEXT PRIMARY KEY,
    added_at INTEGER NOT NULL
);
