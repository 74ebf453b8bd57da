-- Values every replica of a grid must share, made once by whichever replica needs one first
-- (e.g. the key that binds MPP payment challenges to this grid).
CREATE TABLE grid_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
