-- What a live stream has delivered to its caller, written as it goes (at most once a second),
-- so that a coordinator killed mid-stream still bills, at restart, the tokens that reached the
-- caller instead of releasing them unpaid. `delivered_micros` is their cost at the job's price,
-- capped at the hold.
ALTER TABLE jobs ADD COLUMN delivered_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN delivered_micros BIGINT NOT NULL DEFAULT 0;
