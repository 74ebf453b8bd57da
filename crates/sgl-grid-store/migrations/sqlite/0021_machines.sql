-- Machines rented by the hour (issue 18). A machine is paid for when asked (held in
-- `escrow:job:{id}`), the payment taken when it answers SSH and given back in full if it never
-- does. Its log is `machine_events`; `once_key` makes each warning happen once per expiry.
CREATE TABLE machines (
    id TEXT PRIMARY KEY,
    api_key_id INTEGER NOT NULL,
    account_id INTEGER NOT NULL,
    label TEXT,
    plan TEXT NOT NULL,
    region TEXT NOT NULL,
    backend TEXT NOT NULL,
    os_id INTEGER,
    hourly_micros INTEGER NOT NULL,
    prepaid_hours INTEGER NOT NULL,
    paid_micros INTEGER NOT NULL,
    refunded_micros INTEGER NOT NULL DEFAULT 0,
    extensions INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    end_reason TEXT,
    provider_id TEXT,
    ssh_host TEXT,
    ssh_port INTEGER,
    ssh_key TEXT,
    password_sealed TEXT,
    password_shown_at INTEGER,
    created_at INTEGER NOT NULL,
    ready_deadline INTEGER NOT NULL,
    active_at INTEGER,
    expires_at INTEGER,
    destroy_at INTEGER,
    ended_at INTEGER,
    destroyed_at INTEGER
);
CREATE INDEX machines_by_account ON machines (account_id, created_at);
CREATE INDEX machines_by_state ON machines (state, expires_at);

CREATE TABLE machine_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    machine_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    expires_before INTEGER,
    expires_after INTEGER,
    plan_before TEXT,
    once_key TEXT UNIQUE
);
CREATE INDEX machine_events_by_machine ON machine_events (machine_id, id);
