-- Machines rented by the hour (issue 18). A machine is paid for when asked (held in
-- `escrow:job:{id}`), the payment taken when it answers SSH and given back in full if it never
-- does. Its log is `machine_events`; `once_key` makes each warning happen once per expiry.
CREATE TABLE machines (
    id TEXT PRIMARY KEY,
    api_key_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    label TEXT,
    plan TEXT NOT NULL,
    region TEXT NOT NULL,
    backend TEXT NOT NULL,
    os_id BIGINT,
    hourly_micros BIGINT NOT NULL,
    prepaid_hours BIGINT NOT NULL,
    paid_micros BIGINT NOT NULL,
    refunded_micros BIGINT NOT NULL DEFAULT 0,
    extensions BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    end_reason TEXT,
    provider_id TEXT,
    ssh_host TEXT,
    ssh_port BIGINT,
    ssh_key TEXT,
    password_sealed TEXT,
    password_shown_at BIGINT,
    created_at BIGINT NOT NULL,
    ready_deadline BIGINT NOT NULL,
    active_at BIGINT,
    expires_at BIGINT,
    destroy_at BIGINT,
    ended_at BIGINT,
    destroyed_at BIGINT
);
CREATE INDEX machines_by_account ON machines (account_id, created_at);
CREATE INDEX machines_by_state ON machines (state, expires_at);

CREATE TABLE machine_events (
    id BIGSERIAL PRIMARY KEY,
    machine_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    expires_before BIGINT,
    expires_after BIGINT,
    plan_before TEXT,
    once_key TEXT UNIQUE
);
CREATE INDEX machine_events_by_machine ON machine_events (machine_id, id);
