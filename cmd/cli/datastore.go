package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/relata/relata/server"
	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pebblestore"
	"github.com/relata/relata/tuples/pgstore"
)

// datastoreHelp is the --datastore flag's help; it never shows a value, so a password
// set through RELATA_DATASTORE cannot reach --help output.
const datastoreHelp = "PostgreSQL URL postgres://USER@HOST:PORT/DB?sslmode=… of a datastore shared by several nodes (absent: embedded Pebble in --data-dir)"

// noTrackingFlag is the hidden serve flag that turns cross-node tracking off, to
// measure what tracking costs (pgstore.Options.NoCrossNodeTracking).
const noTrackingFlag = "measure-no-cross-node-tracking"

// openStore opens the store serve runs on: PostgreSQL when --datastore is set
// (applying pending migrations first unless --no-migrate), else Pebble in --data-dir. It
// returns the store and how to name it in logs (never with a password).
func openStore(ctx context.Context, log *slog.Logger, f *serveFlags, metrics *server.Metrics, mem memoryPlan) (tuples.Store, string, error) {
	datastore, dataDir := f.datastore, f.dataDir
	if datastore == "" {
		store, err := openPebble(ctx, dataDir, &pebblestore.Options{GCWindow: f.gcWindow, Logger: log,
			CacheSize: mem.BlockCache, ReadCacheSize: mem.ReadCache,
			OnCommit: metrics.ObserveCommit, MinFreeBytes: int64(f.minFree)})
		if errors.Is(err, tuples.ErrStorageFull) {
			return nil, "", fmt.Errorf("serve: no space left on %s: free space and restart", dataDir)
		}
		if err != nil && (errors.Is(err, syscall.EAGAIN) || strings.Contains(err.Error(), "lock held")) {
			return nil, "", fmt.Errorf("serve: %s is locked: is another relata serve using it? (%w)", dataDir, err)
		}
		if err != nil {
			return nil, "", fmt.Errorf("serve: opening %s: %w", dataDir, err)
		}
		return store, dataDir, nil
	}
	name := pgstore.RedactURL(datastore)
	if !f.noMigrate {
		from, to, err := pgstore.Migrate(ctx, datastore, log)
		if err != nil {
			return nil, "", fmt.Errorf("serve: migrating the datastore %s: %w", name, err)
		}
		if from != to {
			log.Info("relata: datastore migrated", "datastore", name, "from_version", from, "to_version", to)
		}
	}
	store, err := pgstore.Open(ctx, datastore, &pgstore.Options{GCWindow: f.gcWindow, Logger: log, ReadCacheSize: mem.ReadCache,
		NoCrossNodeTracking: f.noTracking})
	if err != nil {
		return nil, "", fmt.Errorf("serve: opening the datastore %s: %w", name, err)
	}
	if f.noTracking {
		log.Warn("relata: --" + noTrackingFlag + ": MEASUREMENT ONLY. This node does not follow other nodes' writes: " +
			"it must be the only node on its database; another node's write stops its caches for good. Never run a fleet with it.")
	}
	return store, name, nil
}

// addMigrateCommand registers `relata migrate`.
func addMigrateCommand(root *cobra.Command, s *streams) {
	var datastore string
	cmd := &cobra.Command{
		Use:   "migrate --datastore URL",
		Short: "Apply pending migrations to a PostgreSQL datastore",
		Long: `Apply the database migrations this binary carries to the PostgreSQL datastore
at --datastore (also RELATA_DATASTORE), under an advisory lock, so that several nodes
may run it at once. It is idempotent. A database migrated by a newer relata is refused.
relata serve --datastore applies pending migrations itself unless --no-migrate.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return bindEnv(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if datastore == "" {
				return usageError("migrate: --datastore URL (or RELATA_DATASTORE) is required")
			}
			from, to, err := pgstore.Migrate(cmd.Context(), datastore, nil)
			if err != nil {
				return oneLine(fmt.Errorf("migrate: %s: %w", pgstore.RedactURL(datastore), err))
			}
			if from == to {
				fmt.Fprintf(s.out, "%s: up to date at schema version %d\n", pgstore.RedactURL(datastore), to)
			} else {
				fmt.Fprintf(s.out, "%s: migrated from schema version %d to %d\n", pgstore.RedactURL(datastore), from, to)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&datastore, "datastore", "", datastoreHelp)
	root.AddCommand(cmd)
}
