-- Two lookups every job and every node request make, measured by `sgl-bench scale`.
-- A balance was the sum of all of an account's postings, so every hold and settlement grew
-- slower with each job the account had paid for; each account now carries its balance, moved
-- in the same transaction as its postings (and still equal to their sum, which the audit checks).
-- A node token is looked up as the current or the previous token, and the previous one had
-- no index, so each lookup scanned every node.
ALTER TABLE ledger_accounts ADD COLUMN balance BIGINT NOT NULL DEFAULT 0;
UPDATE ledger_accounts SET balance =
    (SELECT COALESCE(SUM(p.amount), 0) FROM ledger_postings p WHERE p.account = ledger_accounts.name);
CREATE INDEX nodes_by_previous_token ON nodes (previous_token_hash) WHERE previous_token_hash IS NOT NULL;
