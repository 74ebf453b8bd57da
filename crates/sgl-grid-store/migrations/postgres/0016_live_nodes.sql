-- Nodes' live state as their heartbeats last showed it (models, keys, capacity, prices, as the
-- grid's registry holds it, in JSON), written by the replica that took the heartbeat: at most
-- every few seconds per node unless it changed. A replica that starts reads it, so it can
-- schedule before the nodes' next heartbeats; from then on notifications keep it fresh.
CREATE TABLE live_nodes (
    node_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    last_seen BIGINT NOT NULL
);
