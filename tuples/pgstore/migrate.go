package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Migrations are the versioned SQL files under migrations/, named NNNN_what.sql and
// applied in order, each in its own transaction together with its row in
// relata_migration. They are embedded in the binary, so a binary always knows exactly
// which database layout it needs.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the advisory lock key that serializes migrations across nodes
// ("relata migrate" as a big-endian int64, truncated).
const migrationLock int64 = 0x72656c6174616d69

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", name)
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations are not numbered 1, 2, …: %s", m.name)
		}
	}
	return ms, nil
}

// SchemaVersion is the database layout version this binary needs: the number of the
// newest embedded migration.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// ErrNewerDatabase is wrapped by the error of Open and Migrate on a database that a
// newer Relata migrated.
var ErrNewerDatabase = errors.New("the database was migrated by a newer relata")

// ErrNotMigrated is wrapped by Open's error on a database with pending migrations.
var ErrNotMigrated = errors.New("the database needs migrations")

// Migrate applies the pending migrations to the database at url, under an advisory
// lock so that nodes starting together migrate once. It is idempotent: on an
// up-to-date database it changes nothing. It returns the versions before and after.
// A database migrated by a newer binary is refused with ErrNewerDatabase.
func Migrate(ctx context.Context, url string, log *slog.Logger) (from, to int, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := parseConfig(url)
	if err != nil {
		return 0, 0, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return 0, 0, classify(ctx, "connect", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return 0, 0, classify(ctx, "migration lock", err)
	}
	defer func() { _, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", migrationLock) }()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS relata_migration (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, 0, classify(ctx, "migrate", err)
	}
	cur, err := dbVersion(ctx, conn)
	if err != nil {
		return 0, 0, err
	}
	from = cur
	ms, err := migrations()
	if err != nil {
		return 0, 0, err
	}
	want := len(ms)
	if cur > want {
		return cur, cur, newerError(cur, want)
	}
	for _, m := range ms[cur:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO relata_migration (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return cur, cur, classify(ctx, "migration "+m.name, err)
		}
		log.InfoContext(ctx, "pgstore: migration applied", "version", m.version, "name", m.name)
		cur = m.version
	}
	return from, cur, nil
}

// dbVersion returns the newest applied migration, 0 for an empty database.
func dbVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var v int
	err := q.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM relata_migration").Scan(&v)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return 0, nil
	}
	if err != nil {
		return 0, classify(ctx, "schema version", err)
	}
	return v, nil
}

func newerError(db, binary int) error {
	return fmt.Errorf("%w: the database is at schema version %d, this binary knows versions up to %d; run a relata at least as new as the one that migrated it", ErrNewerDatabase, db, binary)
}

// checkVersion fails unless the database is at exactly this binary's version.
func checkVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) error {
	cur, err := dbVersion(ctx, q)
	if err != nil {
		return err
	}
	want := SchemaVersion()
	switch {
	case cur > want:
		return newerError(cur, want)
	case cur < want:
		return fmt.Errorf("%w: the database is at schema version %d, this binary needs %d; run `relata migrate --datastore URL` (or serve without --no-migrate)", ErrNotMigrated, cur, want)
	}
	return nil
}
