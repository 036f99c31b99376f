package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/grpclog"

	"github.com/relata/relata/check"
	"github.com/relata/relata/console"
	"github.com/relata/relata/schema/models"
	"github.com/relata/relata/server"
	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pebblestore"
)

// serveFlags are the flags of `relata serve`; each is also RELATA_<NAME> in the
// environment (RELATA_DATA_DIR, RELATA_PRESHARED_KEY, ...).
type serveFlags struct {
	dataDir   string
	datastore string
	noMigrate bool
	// noTracking is the hidden --measure-no-cross-node-tracking (measurement only).
	noTracking   bool
	grpcAddr     string
	httpAddr     string
	presharedKey string
	keysFile     string
	oidcIssuer   string
	oidcAudience string
	oidcJWKSFile string
	oidcJWKSURL  string
	schemaFile   string
	model        string
	maxDepth     int
	quantization time.Duration
	gcWindow     time.Duration
	cacheSize    byteSize
	logLevel     string
	logFormat    string
	pprof        string
	metricsAddr  string
	ui           bool
	tlsCert      string
	tlsKey       string
	tlsClientCA  string
	minFree      byteSize
	idleTimeout  time.Duration
	readTimeout  time.Duration
	maxConns     int
	otlpEndpoint string
	memoryLimit  byteSize
	blockCache   byteSize
	readCache    byteSize
	// overrides are the cache flags given explicitly (set in RunE).
	overrides cacheOverrides
}

// addServeCommand registers `relata serve`.
func addServeCommand(root *cobra.Command, s *streams) {
	f := &serveFlags{memoryLimit: defaultMemoryLimit, minFree: pebblestore.DefaultMinFreeBytes}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Relata server (gRPC and REST) on an embedded Pebble store",
		Long: `Run the Relata server: gRPC on --grpc-addr, REST (grpc-gateway) on --http-addr,
tuples in an embedded Pebble database in --data-dir, or in the PostgreSQL database
of --datastore, which any number of relata serve processes may share. With no flags it serves
./relata-data on :50051 and :8080 and, when the store has no schema yet, loads the
default model (` + models.Default + `). Every flag can also be set as RELATA_<FLAG>,
e.g. RELATA_PRESHARED_KEY. Stops gracefully on SIGINT or SIGTERM.

Memory: --memory-limit (default 512MiB) is one budget: the check cache gets 45% of
it (a sixteenth of that holds lookups' cached scans), Pebble's block cache 6.25% and the read cache 6.25% (in whole 32MiB steps, at
least one from 256MiB up, none under), and the Go soft memory limit is set to what
remains after those off-heap caches, Pebble's memtables (32MiB) and an eighth of
headroom (352MiB at the default), so that the process stays under the limit. --cache-size, --block-cache-size and --read-cache-size override their share;
--memory-limit 0 turns the budget off (fixed cache sizes, no Go limit). GOMEMLIMIT in
the environment wins over the computed Go limit.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return bindEnv(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			for name, p := range map[string]**int64{"cache-size": &f.overrides.check, "block-cache-size": &f.overrides.block, "read-cache-size": &f.overrides.read} {
				if fl := cmd.Flags().Lookup(name); fl.Changed {
					n := int64(*fl.Value.(*byteSize))
					*p = &n
				}
			}
			return runServe(cmd.Context(), s, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", "./relata-data", "directory of the Pebble database")
	fl.StringVar(&f.datastore, "datastore", "", datastoreHelp)
	fl.BoolVar(&f.noMigrate, "no-migrate", false, "with --datastore: do not apply pending migrations at start (run relata migrate instead)")
	fl.BoolVar(&f.noTracking, noTrackingFlag, false, "MEASUREMENT ONLY, never in a fleet: with --datastore, do not follow other nodes' writes (refused while another node follows the database; another node's write then stops this node's caches for good); see docs/deployment.md")
	_ = fl.MarkHidden(noTrackingFlag)
	fl.StringVar(&f.grpcAddr, "grpc-addr", server.DefaultGRPCAddr, "gRPC listen address")
	fl.StringVar(&f.httpAddr, "http-addr", server.DefaultHTTPAddr, "REST listen address")
	fl.StringVar(&f.presharedKey, "preshared-key", "", "require \"Authorization: Bearer KEY\" on every request (this key has every scope)")
	fl.StringVar(&f.keysFile, "keys-file", "", "`FILE` of named keys (by SHA-256) and their scopes; reloaded on change and on SIGHUP (docs/security.md)")
	fl.StringVar(&f.oidcIssuer, "oidc-issuer", "", "accept JWT bearer tokens of this OIDC issuer (its \"iss\")")
	fl.StringVar(&f.oidcAudience, "oidc-audience", "", "the \"aud\" a JWT must name (with --oidc-issuer)")
	fl.StringVar(&f.oidcJWKSFile, "oidc-jwks-file", "", "JSON Web Key Set `FILE` of the OIDC issuer; reloaded on change and on SIGHUP")
	fl.StringVar(&f.oidcJWKSURL, "oidc-jwks-url", "", "JSON Web Key Set `URL` of the OIDC issuer; fetched every 5 minutes and on an unknown key id")
	fl.StringVar(&f.schemaFile, "schema", "", "schema file to write at start")
	fl.StringVar(&f.model, "model", "", "`NAME` of a bundled model to write at start (list them with: relata schema models)")
	fl.IntVar(&f.maxDepth, "max-depth", 50, "recursion limit of checks and lookups")
	fl.DurationVar(&f.quantization, "quantization", server.DefaultQuantization, "how old a minimize_latency read's revision may be")
	fl.DurationVar(&f.gcWindow, "gc-window", pebblestore.DefaultGCWindow, "how long old revisions stay readable")
	fl.Var(&f.memoryLimit, "memory-limit", "memory budget of the process: sizes every cache and sets the Go soft memory limit (0: no budget)")
	fl.Var(&f.cacheSize, "cache-size", "check cache size, e.g. 256MiB; 0 disables (default: 45% of --memory-limit)")
	fl.Var(&f.blockCache, "block-cache-size", "Pebble block cache size (default: 6.25% of --memory-limit)")
	fl.Var(&f.readCache, "read-cache-size", "store read cache size (allocated in whole 32MiB steps); 0 disables (default: 6.25% of --memory-limit in whole 32MiB steps, at least 32MiB from 256MiB up, none under)")
	fl.DurationVar(&f.idleTimeout, "http-idle-timeout", server.DefaultHTTPIdleTimeout, "close REST keep-alive connections idle this long")
	fl.DurationVar(&f.readTimeout, "http-read-timeout", server.DefaultHTTPReadTimeout, "the longest a REST request body may take to arrive")
	fl.IntVar(&f.maxConns, "max-connections", 0, "cap on open gRPC and REST connections together (0: from the descriptor limit)")
	fl.Var(&f.minFree, "min-free-space", "free space the data directory keeps: below it writes fail with STORAGE_FULL until space is freed")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json (one object a line)")
	fl.StringVar(&f.metricsAddr, "metrics-addr", "", "also serve GET /metrics on this address without authentication, e.g. localhost:9090 (it is always on the HTTP port, under the API's auth)")
	fl.BoolVar(&f.ui, "ui", true, "serve the web console at /ui/ on the HTTP port (--ui=false turns it off)")
	fl.StringVar(&f.tlsCert, "tls-cert-file", "", "PEM certificate `FILE` (chain) for TLS on gRPC and REST; reloaded on SIGHUP")
	fl.StringVar(&f.tlsKey, "tls-key-file", "", "PEM private key `FILE` of --tls-cert-file; reloaded on SIGHUP")
	fl.StringVar(&f.tlsClientCA, "tls-client-ca-file", "", "PEM `FILE` of CAs whose client certificates are required (mutual TLS); reloaded on SIGHUP")
	fl.StringVar(&f.otlpEndpoint, "otlp-endpoint", "", "send OpenTelemetry traces (RPC, check, store read spans) to this OTLP/gRPC collector: HOST:PORT (plaintext on loopback, else TLS), http://HOST:PORT or https://HOST:PORT; off when empty")
	fl.StringVar(&f.pprof, "pprof", "", "serve Go pprof profiles (/debug/pprof/) on this address, e.g. localhost:6060")
	root.AddCommand(cmd)
}

// grpcLogOnce sets grpclog's logger once per process (see runServe).
var grpcLogOnce sync.Once

func runServe(ctx context.Context, s *streams, f *serveFlags) error {
	if f.schemaFile != "" && f.model != "" {
		return usageError("serve: --schema and --model exclude each other")
	}
	oidc, err := f.oidcConfig()
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return usageError("serve: --log-level %q: want debug, info, warn or error", f.logLevel)
	}
	var handler slog.Handler
	switch f.logFormat {
	case "text":
		handler = slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: level})
	case "json":
		handler = slog.NewJSONHandler(s.err, &slog.HandlerOptions{Level: level})
	default:
		return usageError("serve: --log-format %q: want text or json", f.logFormat)
	}
	log := slog.New(handler)
	// gRPC's and grpc-gateway's own lines go to the same log. grpclog is per process
	// and may be set only before gRPC runs: the first serve of the process sets it.
	grpcLogOnce.Do(func() { grpclog.SetLoggerV2(server.GRPCLogger(log)) })

	var text []byte
	// source names the schema in messages; compileName in its error positions.
	source, compileName := "", "schema"
	switch {
	case f.schemaFile != "":
		b, err := os.ReadFile(f.schemaFile)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		text, source, compileName = b, f.schemaFile, f.schemaFile
	case f.model != "":
		b, err := models.Schema(f.model)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		text, source = b, "model "+f.model
	}

	var certs *server.CertFiles
	if f.tlsCert != "" || f.tlsKey != "" || f.tlsClientCA != "" {
		if f.tlsCert == "" || f.tlsKey == "" {
			return usageError("serve: TLS needs both --tls-cert-file and --tls-key-file (--tls-client-ca-file adds mutual TLS)")
		}
		var err error
		if certs, err = server.NewCertFiles(f.tlsCert, f.tlsKey, f.tlsClientCA); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	if f.noTracking && f.datastore == "" {
		return usageError("serve: --%s needs --datastore (Pebble has one node and nothing to track)", noTrackingFlag)
	}
	mem, err := planMemory(int64(f.memoryLimit), f.datastore == "", f.overrides)
	if err != nil {
		return err
	}
	restoreGoLimit, goLimitFromEnv := applyGoLimit(mem)
	defer restoreGoLimit()
	if mem.Limit > 0 {
		log.Info("relata: memory budget", "memory_limit", sizeString(mem.Limit), "check_cache", sizeString(max(mem.CheckCache, 0)),
			"block_cache", sizeString(mem.BlockCache), "read_cache", sizeString(max(mem.ReadCache, 0)), "go_memory_limit", sizeString(mem.GoLimit))
	}
	if mem.Over != "" {
		log.Warn("relata: " + mem.Over)
	}
	if goLimitFromEnv {
		log.Info("relata: GOMEMLIMIT is set: it is the Go soft memory limit, not the one --memory-limit computes")
	}
	metrics := server.NewMetrics()
	store, storeName, err := openStore(ctx, log, f, metrics, mem)
	if err != nil {
		return oneLine(err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("relata: closing the store", "err", err)
		}
	}()
	cacheBytes := mem.CheckCache // 0: check's default; negative: disabled
	var tracer trace.TracerProvider
	if f.otlpEndpoint != "" {
		tp, shutdown, err := otlpTracerProvider(ctx, f.otlpEndpoint, readBuildVersion().Version)
		if err != nil {
			return err
		}
		defer shutdown()
		tracer = tp
		log.Info("relata: tracing on", "otlp_endpoint", f.otlpEndpoint)
	}
	var ui http.Handler
	if f.ui {
		ui = console.Handler()
	}
	srv, err := server.New(server.Config{
		Store:           store,
		Engine:          check.New(check.Options{MaxDepth: f.maxDepth, CacheBytes: cacheBytes}),
		GRPCAddr:        f.grpcAddr,
		HTTPAddr:        f.httpAddr,
		PresharedKey:    f.presharedKey,
		KeysFile:        f.keysFile,
		HTTPIdleTimeout: f.idleTimeout,
		HTTPReadTimeout: f.readTimeout,
		MaxConnections:  f.maxConns,
		OIDC:            oidc,
		Quantization:    f.quantization,
		Logger:          log,
		Metrics:         metrics,
		MetricsAddr:     f.metricsAddr,
		Console:         ui,
		Certs:           certs,
		TracerProvider:  tracer,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if f.datastore != "" {
		log.Info("relata: store open", "datastore", storeName)
	} else {
		log.Info("relata: store open", "data_dir", storeName)
	}
	if err := loadSchema(ctx, log, store, srv, text, source, compileName); err != nil {
		// Refuse to serve rather than serve another schema than the one asked for.
		srv.Close()
		return oneLine(errors.New("serve: schema not loaded: " + err.Error()))
	}
	if f.presharedKey == "" && f.keysFile == "" && oidc == nil {
		log.Warn("relata: no --preshared-key, --keys-file or --oidc-issuer: every request is accepted without a token")
	}
	stopReload := reloadOnSIGHUP(ctx, log, srv, certs != nil)
	defer stopReload()
	if f.pprof != "" {
		stop, err := servePprof(ctx, log, f.pprof)
		if err != nil {
			return fmt.Errorf("serve: --pprof: %w", err)
		}
		defer stop()
	}
	return srv.Serve(ctx)
}

// openPebble opens the Pebble store, giving up when ctx ends (SIGTERM while Pebble
// is stuck opening; its goroutine is left to the process exit).
func openPebble(ctx context.Context, dir string, opts *pebblestore.Options) (*pebblestore.Store, error) {
	type opened struct {
		s   *pebblestore.Store
		err error
	}
	done := make(chan opened, 1)
	go func() {
		s, err := pebblestore.Open(dir, opts)
		done <- opened{s, err}
	}()
	select {
	case o := <-done:
		return o.s, o.err
	case <-ctx.Done():
		go func() { // close a store that opens after all
			if o := <-done; o.s != nil {
				_ = o.s.Close()
			}
		}()
		return nil, fmt.Errorf("stopped while opening %s: %w", dir, ctx.Err())
	}
}

// oidcConfig returns the OIDC configuration of the --oidc-* flags, nil when none is
// given, and a usage error when they are incomplete.
func (f *serveFlags) oidcConfig() (*server.OIDCConfig, error) {
	if f.oidcIssuer == "" && f.oidcAudience == "" && f.oidcJWKSFile == "" && f.oidcJWKSURL == "" {
		return nil, nil
	}
	switch {
	case f.oidcIssuer == "" || f.oidcAudience == "":
		return nil, usageError("serve: OIDC needs both --oidc-issuer and --oidc-audience")
	case (f.oidcJWKSFile == "") == (f.oidcJWKSURL == ""):
		return nil, usageError("serve: OIDC needs exactly one of --oidc-jwks-file and --oidc-jwks-url")
	}
	return &server.OIDCConfig{Issuer: f.oidcIssuer, Audience: f.oidcAudience, JWKSFile: f.oidcJWKSFile, JWKSURL: f.oidcJWKSURL}, nil
}

// reloadOnSIGHUP reloads the keys file, the OIDC key set and the TLS files on SIGHUP until stop is
// called.
func reloadOnSIGHUP(ctx context.Context, log *slog.Logger, srv *server.Server, withTLS bool) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				if err := srv.ReloadKeys(ctx); err != nil {
					log.ErrorContext(ctx, "relata: SIGHUP: credentials not reloaded", "err", err)
				}
				if err := srv.ReloadTLS(); err != nil {
					log.ErrorContext(ctx, "relata: SIGHUP: TLS certificate not reloaded; the previous one stays in use", "err", err)
				} else if withTLS {
					log.InfoContext(ctx, "relata: SIGHUP: TLS certificate reloaded")
				}
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}

// servePprof serves net/http/pprof's handlers on addr (its own listener and mux, never
// the API's) until stop is called.
func servePprof(ctx context.Context, log *slog.Logger, addr string) (stop func(), err error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.ErrorContext(ctx, "relata: pprof server", "err", err)
		}
	}()
	log.InfoContext(ctx, "relata: serving pprof", "addr", lis.Addr().String())
	return func() {
		hs.Close()
		<-done
	}, nil
}

// loadSchema writes the schema from --schema or --model, or the default model when
// the store has none, and says which schema the store serves. A schema that does not
// compile, or that would orphan stored tuples, is an error naming its source.
func loadSchema(ctx context.Context, log *slog.Logger, store tuples.Store, srv *server.Server, text []byte, source, compileName string) error {
	current, err := currentSchema(ctx, store)
	if err != nil && !errors.Is(err, tuples.ErrNoSchema) {
		return err
	}
	if text == nil {
		if current != nil {
			log.Info("relata: serving the stored schema")
			return nil
		}
		b, err := models.Schema(models.Default)
		if err != nil {
			log.Warn("relata: the store has no schema; write one with `relata schema write FILE`")
			return nil
		}
		text, source = b, "default model "+models.Default
	}
	if current != nil && string(current) == string(text) {
		log.Info("relata: the stored schema is already " + source)
		return nil
	}
	rev, err := srv.WriteSchema(ctx, compileName, text)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	log.Info("relata: schema written", "source", source, "zookie", srv.Zookie(rev))
	return nil
}

// currentSchema returns the schema text at the head, or ErrNoSchema.
func currentSchema(ctx context.Context, store tuples.Store) ([]byte, error) {
	head, err := store.HeadRevision(ctx)
	if err != nil {
		return nil, err
	}
	r, err := store.ReaderAt(ctx, head)
	if err != nil {
		return nil, err
	}
	text, _, err := r.Schema(ctx)
	return text, err
}

// bindEnv sets every flag of cmd that was not given on the command line from
// RELATA_<NAME> (upper case, '-' as '_'), e.g. --preshared-key from
// RELATA_PRESHARED_KEY. Empty variables count as unset. A bad value is a usage error.
func bindEnv(cmd *cobra.Command) error {
	var errs []error
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if fl.Changed || fl.Name == "help" || fl.Hidden {
			return // hidden flags are for measurement: the command line only
		}
		name := "RELATA_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		v := os.Getenv(name)
		if v == "" {
			return
		}
		if err := fl.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			return
		}
		fl.Changed = true
	})
	if err := errors.Join(errs...); err != nil {
		return &exitError{code: ExitUsage, err: err}
	}
	return nil
}

// byteSize is a flag value in bytes that accepts KiB, MiB and GiB suffixes (and KB, MB, GB
// as the same powers of two).
type byteSize int64

// String shows the size as the README writes it: 192MiB, 1GiB, 512KiB, or bytes.
func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func (b *byteSize) Type() string { return "size" }

func (b *byteSize) Set(s string) error {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("invalid size %q: want a number of bytes, optionally with KiB, MiB or GiB", s)
	}
	*b = byteSize(n * mult)
	return nil
}
