-- A key made by a wallet's sign-in (`POST /v1/auth/wallet`) stops working at `expires_at`
-- (Unix ms); other keys have none.
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
