-- Reputation decays toward neutral over time: the value is stored with the moment it was set.
ALTER TABLE nodes ADD COLUMN reputation_at INTEGER NOT NULL DEFAULT 0;
