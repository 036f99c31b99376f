-- Relata's PostgreSQL store, version 1. See tuples/pgstore/store.go for the design.
-- Text columns use the "C" collation so that ORDER BY is byte order, the store's
-- canonical tuple order. 9223372036854775807 (the largest bigint) as deleted_rev marks
-- a live version.

-- One row: the head revision. Every write takes this row's lock first (UPDATE ...
-- RETURNING), which orders writers and makes revisions dense.
CREATE TABLE relata_revision (
    id   integer PRIMARY KEY CHECK (id = 1),
    head bigint NOT NULL
);
INSERT INTO relata_revision (id, head) VALUES (1, 0);

-- One row: the GC horizon, the oldest readable revision.
CREATE TABLE relata_horizon (
    id      integer PRIMARY KEY CHECK (id = 1),
    horizon bigint NOT NULL
);
INSERT INTO relata_horizon (id, horizon) VALUES (1, 0);

-- Store-wide settings, e.g. the store's random id.
CREATE TABLE relata_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO relata_meta (key, value) VALUES ('store_id', md5(random()::text || clock_timestamp()::text));

-- When each revision committed: the GC window is measured on it.
CREATE TABLE relata_commit (
    rev          bigint PRIMARY KEY,
    committed_at timestamptz NOT NULL DEFAULT now()
);

-- Tuple versions: live at R when created_rev <= R < deleted_rev.
CREATE TABLE relata_tuple (
    object_type      text COLLATE "C" NOT NULL,
    object_id        text COLLATE "C" NOT NULL,
    relation         text COLLATE "C" NOT NULL,
    subject_type     text COLLATE "C" NOT NULL,
    subject_id       text COLLATE "C" NOT NULL,
    subject_relation text COLLATE "C" NOT NULL,
    created_rev      bigint NOT NULL,
    deleted_rev      bigint NOT NULL DEFAULT 9223372036854775807,
    caveat_name      text,
    caveat_context   jsonb,
    expires_at       timestamptz,
    PRIMARY KEY (object_type, object_id, relation, subject_type, subject_id, subject_relation, created_rev)
);
-- At most one live version of a tuple.
CREATE UNIQUE INDEX relata_tuple_live ON relata_tuple
    (object_type, object_id, relation, subject_type, subject_id, subject_relation)
    WHERE deleted_rev = 9223372036854775807;
-- The reverse index, for lookups by subject.
CREATE INDEX relata_tuple_reverse ON relata_tuple
    (subject_type, subject_id, subject_relation, object_type, relation, object_id);
-- GC's work list: versions that were deleted.
CREATE INDEX relata_tuple_deleted ON relata_tuple (deleted_rev)
    WHERE deleted_rev < 9223372036854775807;

-- The change log: op 0 = TOUCH (created), 2 = DELETE, in commit order (rev, seq).
CREATE TABLE relata_change (
    rev              bigint NOT NULL,
    seq              integer NOT NULL,
    op               smallint NOT NULL,
    object_type      text COLLATE "C" NOT NULL,
    object_id        text COLLATE "C" NOT NULL,
    relation         text COLLATE "C" NOT NULL,
    subject_type     text COLLATE "C" NOT NULL,
    subject_id       text COLLATE "C" NOT NULL,
    subject_relation text COLLATE "C" NOT NULL,
    caveat_name      text,
    caveat_context   jsonb,
    expires_at       timestamptz,
    PRIMARY KEY (rev, seq)
);

-- Schema text per revision.
CREATE TABLE relata_schema (
    rev  bigint PRIMARY KEY,
    text bytea NOT NULL
);
