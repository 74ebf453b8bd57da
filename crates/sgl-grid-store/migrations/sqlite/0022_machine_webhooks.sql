-- Machines (issue 18): an optional URL the grid POSTs a machine's warnings and its end to.
ALTER TABLE machines ADD COLUMN webhook_url TEXT;
