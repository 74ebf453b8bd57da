-- Keys form accounts: a key created by another key belongs to the creating key's account
-- (its root key); NULL means the key is a root.
ALTER TABLE api_keys ADD COLUMN account_id INTEGER;
CREATE INDEX api_keys_account ON api_keys (account_id);
