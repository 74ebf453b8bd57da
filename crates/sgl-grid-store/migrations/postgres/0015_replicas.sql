-- Several coordinators (replicas) on one PostgreSQL.
--
-- Each serving process registers itself and beats here; a replica whose beat is older than the
-- grid's replica timeout is dead, and the leader (whoever holds the advisory lock) releases the
-- jobs it had dispatched: their callers' connections died with it.
CREATE TABLE replicas (
    id TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);

-- The replica that dispatched a job and holds its caller. NULL for jobs written before this
-- migration (and on SQLite, where there is only one process).
ALTER TABLE jobs ADD COLUMN replica TEXT;
CREATE INDEX jobs_dispatched_by_replica ON jobs (replica) WHERE status = 'dispatched';

-- Messages between replicas travel by NOTIFY; one larger than NOTIFY's 8,000-byte payload goes
-- here and the notification carries its id. The leader deletes them after a minute.
CREATE TABLE bus_payloads (
    id BIGSERIAL PRIMARY KEY,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Reservations, so that a sealed request may reach any replica, not only the one that reserved
-- its node. Single use: taking one deletes it.
CREATE TABLE reservations (
    token TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    model TEXT NOT NULL,
    input_per_m DOUBLE PRECISION NOT NULL,
    output_per_m DOUBLE PRECISION NOT NULL,
    api_key_id BIGINT,
    address TEXT,
    expires_at BIGINT NOT NULL
);
CREATE INDEX reservations_by_key ON reservations (api_key_id);
CREATE INDEX reservations_by_expiry ON reservations (expires_at);
