-- The replica that dispatched a job (PostgreSQL grids run several; see the PostgreSQL
-- migration). A SQLite grid is one process and leaves it NULL; the column keeps both schemas'
-- job rows alike.
ALTER TABLE jobs ADD COLUMN replica TEXT;
