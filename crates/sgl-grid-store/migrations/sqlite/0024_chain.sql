-- The chain (issue 19). How far the grid has read its contracts' stake and bond events (one row
-- per staking contract), every event it applied (by transaction and log index, so each is
-- applied once), operators' bonds as those events left them, and the slashes the grid itself
-- sent, by the hash of their evidence (so their events are not booked a second time).
CREATE TABLE chain_cursor (
    staking TEXT PRIMARY KEY,
    next_block BIGINT NOT NULL
);

CREATE TABLE chain_events (
    event_key TEXT PRIMARY KEY,
    block BIGINT NOT NULL,
    wallet TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount BIGINT NOT NULL,
    applied_at BIGINT NOT NULL
);

CREATE TABLE chain_bonds (
    wallet TEXT PRIMARY KEY,
    bond BIGINT NOT NULL,
    registered INTEGER NOT NULL,
    unlock_at_ms BIGINT NOT NULL
);

CREATE TABLE chain_slashes (
    evidence_hash TEXT PRIMARY KEY,
    wallet TEXT NOT NULL,
    stake_amount BIGINT NOT NULL,
    bond_amount BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
