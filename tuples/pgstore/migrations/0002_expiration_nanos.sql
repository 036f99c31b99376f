-- Caveats and expiration (design §10). caveat_name, caveat_context and expires_at exist
-- since version 1; timestamptz keeps microseconds, so expires_nanos keeps the
-- nanoseconds within the microsecond (0-999) and an expiration reads back exactly as
-- written. A version with expires_at E is visible at revision R when E is after R's
-- commit time (relata_commit). GC finds lapsed versions by expires_at.
ALTER TABLE relata_tuple ADD COLUMN IF NOT EXISTS expires_nanos smallint;
ALTER TABLE relata_change ADD COLUMN IF NOT EXISTS expires_nanos smallint;
CREATE INDEX IF NOT EXISTS relata_tuple_expiring ON relata_tuple (expires_at) WHERE expires_at IS NOT NULL;
