-- Version 3: one unique index for both of the jobs two indexes did, so that every
-- tuple version costs two index insertions (this one and the reverse index) instead
-- of three (Import's PostgreSQL CPU is mostly index insertion; see BENCHMARKS.md).
--
-- The key of a version becomes (tuple, deleted_rev) instead of (tuple, created_rev).
-- It is unique: a live version has deleted_rev 9223372036854775807, and there is at
-- most one live version of a tuple (which is what relata_tuple_live enforced, and
-- what this index enforces now, for Import's COPY and its ON CONFLICT alike); an
-- ended version has the revision that ended it, and a revision ends at most one
-- version of a tuple (the one live before it). Reads at revision R probe it on the
-- tuple's columns with deleted_rev > R as an index condition, as they probed the old
-- key with created_rev.
CREATE UNIQUE INDEX relata_tuple_version ON relata_tuple
    (object_type, object_id, relation, subject_type, subject_id, subject_relation, deleted_rev);
ALTER TABLE relata_tuple DROP CONSTRAINT relata_tuple_pkey;
ALTER TABLE relata_tuple ADD CONSTRAINT relata_tuple_pkey PRIMARY KEY USING INDEX relata_tuple_version;
DROP INDEX relata_tuple_live;
