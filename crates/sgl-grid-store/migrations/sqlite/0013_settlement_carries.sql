-- Each recipient of settled shares (an operator's earnings, the platform, the stakers, the
-- burn) carries the fraction of a micro-dollar it is owed but has not been paid, in 1/10,000
-- micro-dollars (0 <= carry < 10000), so that rounding never moves a share to another account
-- (issue 13). The `rounding` ledger account holds the sum of the carries over 10,000.
CREATE TABLE settlement_carries (
    account TEXT PRIMARY KEY,
    carry BIGINT NOT NULL CHECK (carry >= 0 AND carry < 10000)
);
