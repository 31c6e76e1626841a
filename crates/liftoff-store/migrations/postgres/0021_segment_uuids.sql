-- A sealed part keeps its events' uuids (for exports) while its day is inside the dedupe
-- week; after that the uuids are dropped from it (16 bytes an event, more than the rest of
-- the part) and this flag cleared. Parts sealed before this migration may hold uuids.
ALTER TABLE event_segments ADD COLUMN has_uuids BOOLEAN NOT NULL DEFAULT TRUE;
