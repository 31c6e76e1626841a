-- The lease table serves every singleton job now, not alert evaluation alone.
ALTER TABLE alert_leases RENAME TO leases;
