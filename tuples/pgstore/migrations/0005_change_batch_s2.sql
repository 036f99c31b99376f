-- Version 5: an import's relata_change_batch row is stored compressed (format 2: the
-- rows of format 1 as one S2 block; see copy.go). Rows of format 1 stay readable. The
-- table is unchanged; the version is raised so that a binary that reads only format 1
-- refuses the database instead of failing on its change log.
COMMENT ON COLUMN relata_change_batch.format IS '1: binary COPY fields of each row; 2: the same, one S2 block';
