-- The lease table serves every singleton job now (SQLite grants every lease: one process owns
-- the file; the table is kept so both backends have the same schema).
ALTER TABLE alert_leases RENAME TO leases;
