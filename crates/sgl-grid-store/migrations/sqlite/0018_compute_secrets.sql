-- Job secrets (issue 16): the requester's secrets for one attempt, sealed to its node's key
-- (ciphertext only), kept while the attempt is live and cleared when it ends.
ALTER TABLE compute_attempts ADD COLUMN secrets TEXT;
