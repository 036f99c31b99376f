-- Version 4: the change log of an import batch as one row. An import of new tuples
-- logged a relata_change row a tuple (a heap tuple, a (rev, seq) key insertion and
-- their WAL records), and every node's follower and closure index read the rows back;
-- now it stores the batch's rows once, in key order, encoded as the import sent them
-- to relata_tuple (see copy.go: format 1), and Changes expands them (seq = position).
-- A revision's changes are either rows of relata_change or one row here, never both.
-- STORAGE EXTERNAL: out of line, not compressed (compressing megabytes a batch costs
-- more CPU than the bytes it saves).
CREATE TABLE IF NOT EXISTS relata_change_batch (
    rev    bigint PRIMARY KEY,
    format smallint NOT NULL,
    n      integer NOT NULL,
    rows   bytea NOT NULL
);
ALTER TABLE relata_change_batch ALTER COLUMN rows SET STORAGE EXTERNAL;
