-- Device-authorization logins (`sgl login`): a node polls with a secret device code while its
-- operator approves the short user code with a wallet. The registration code is minted when
-- the node polls and only its hash is kept.

CREATE TABLE device_logins (
    device_code_hash TEXT PRIMARY KEY,
    user_code TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    wallet TEXT,
    registration_code_hash TEXT,
    approved_at BIGINT
);
