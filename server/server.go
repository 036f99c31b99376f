package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/test/bufconn"

	"github.com/relata/relata/check"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/server/writes"
	"github.com/relata/relata/tuples"
)

// Defaults of Config.
const (
	DefaultGRPCAddr        = ":50051"
	DefaultHTTPAddr        = ":8080"
	DefaultQuantization    = 5 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultMaxMessageBytes bounds one gRPC message and one REST body (16 MiB).
	DefaultMaxMessageBytes = 16 << 20
)

// streamWorkers is the number of goroutines gRPC keeps to serve calls (more calls at
// once get a goroutine each, as without workers). A check recurses deeply through the
// engine and Pebble, and a fresh goroutine per call grows its stack every time:
// under `relata bench` (Check at concurrency 64) runtime.newstack/copystack were 20%
// of the server's CPU, 7% with workers, whose stacks stay grown.
const streamWorkers = 64

// Request limits, checked before any work; exceeding one is INVALID_ARGUMENT with
// reason LIMIT_EXCEEDED naming the field.
const (
	MaxCheckBulkItems = 1000 // CheckBulkRequest.items
	MaxZookieBytes    = 256  // any zookie or cursor field
	// The others are defined where they are enforced: tuples.MaxUpdatesPerWrite
	// (WriteRequest.updates), tuples.MaxPreconditions (preconditions of a write or
	// delete), writes.MaxSchemaBytes (WriteSchemaRequest.schema).
)

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// Store is the tuple store; required. The caller owns it and closes it after Serve
	// returns.
	Store tuples.Store
	// Engine answers checks and lookups; nil means check.New(check.Options{}).
	Engine *check.Engine
	// GRPCAddr is the gRPC listen address; default ":50051". Use "127.0.0.1:0" in tests.
	GRPCAddr string
	// HTTPAddr is the REST listen address; default ":8080".
	HTTPAddr string
	// PresharedKey, when set, is a bearer token with every scope. With it, KeysFile or
	// OIDC set, every gRPC call (metadata) and REST request but the health checks
	// (gRPC health, /healthz, /readyz) needs "Authorization: Bearer TOKEN" (auth.go).
	PresharedKey string
	// KeysFile is a YAML file of named keys (by SHA-256) and their scopes, reloaded
	// when it changes and on ReloadKeys (docs/security.md).
	KeysFile string
	// OIDC, when set, accepts JWT bearer tokens of an OpenID Connect issuer.
	OIDC *OIDCConfig
	// HTTPIdleTimeout closes REST keep-alive connections idle this long; default 60 s
	// (limits.go).
	HTTPIdleTimeout time.Duration
	// HTTPReadTimeout bounds reading one REST request body; default 30 s.
	HTTPReadTimeout time.Duration
	// MaxConnections caps the open gRPC and REST connections together; 0 derives it
	// from the descriptor limit, a negative value removes the cap.
	MaxConnections int
	// GRPCMaxConnectionIdle sends GOAWAY to gRPC connections idle this long; default
	// 5 min.
	GRPCMaxConnectionIdle time.Duration
	// Quantization bounds how old a minimize_latency read's revision may be; default
	// 5 s. A negative value makes minimize_latency read the head revision.
	Quantization time.Duration
	// ShutdownTimeout bounds how long Serve waits for in-flight requests after ctx
	// ends before it cuts them off; default 30 s.
	ShutdownTimeout time.Duration
	// MaxMessageBytes bounds one gRPC message and one REST body; default 16 MiB.
	MaxMessageBytes int
	// TLS, when set, serves gRPC and REST over TLS with this configuration.
	TLS *tls.Config
	// Certs, when set, serves gRPC and REST over TLS with one certificate from files,
	// reloaded by ReloadTLS (mutual TLS when it has a client CA file). It takes
	// precedence over TLS.
	Certs *CertFiles
	// Logger receives request logs and lifecycle messages; nil discards them.
	Logger *slog.Logger
	// Metrics is the server's Prometheus registry; nil means a new one (NewMetrics).
	// GET /metrics on the HTTP listener serves it under the API's auth rule.
	Metrics *Metrics
	// MetricsAddr, when set, also serves GET /metrics on its own plaintext listener,
	// without authentication (bind it to a private address).
	MetricsAddr string
	// TracerProvider, when set, traces RPCs, checks and store reads (tracing.go);
	// nil turns tracing off at no cost.
	TracerProvider trace.TracerProvider
	// Console, when set, serves the web console (package console) at /ui/ on the
	// HTTP port, without a token: its assets hold no data, and the API calls it makes
	// carry the caller's token. nil answers 404 there.
	Console http.Handler
	// batchDelay, when not zero, replaces batchDelay (batch.go) for tests that need
	// batches cut by size alone.
	batchDelay time.Duration
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Engine == nil {
		c.Engine = check.New(check.Options{})
	}
	if c.GRPCAddr == "" {
		c.GRPCAddr = DefaultGRPCAddr
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.Quantization == 0 {
		c.Quantization = DefaultQuantization
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.HTTPIdleTimeout == 0 {
		c.HTTPIdleTimeout = DefaultHTTPIdleTimeout
	}
	if c.HTTPReadTimeout == 0 {
		c.HTTPReadTimeout = DefaultHTTPReadTimeout
	}
	if c.GRPCMaxConnectionIdle == 0 {
		c.GRPCMaxConnectionIdle = DefaultGRPCMaxConnectionIdle
	}
	switch {
	case c.MaxConnections == 0:
		c.MaxConnections = defaultMaxConnections()
	case c.MaxConnections < 0:
		c.MaxConnections = math.MaxInt32
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("Config.Store is required")
	}
	if c.MaxMessageBytes < 0 {
		return errors.New("Config.MaxMessageBytes must not be negative")
	}
	return nil
}

// Server is a running-to-be Relata server: both listeners are bound by New, and Serve
// runs them until its ctx ends.
type Server struct {
	cfg     Config
	log     *slog.Logger
	grpcLis net.Listener
	httpLis net.Listener
	grpc    *grpc.Server
	health  *health.Server
	auth    *authenticator
	conns   *connLimiter
	metrics *Metrics
	// gatewaySecret marks the REST gateway's loopback calls (see gatewayHeader).
	gatewaySecret string
	// requestIDs makes the ids of requests that come without one (caller.go).
	requestIDs *requestIDs
	// lastZookie is the last zookie Zookie encoded (consistency.go).
	lastZookie atomic.Pointer[encodedZookie]
	// gwLis and gwGRPC, with TLS, serve the REST gateway's calls in process: a
	// second gRPC server with the same services and interceptors but no TLS, reachable
	// only from this process (the gateway cannot present a client certificate).
	gwLis  *bufconn.Listener
	gwGRPC *grpc.Server
	// metricsLis is the listener of Config.MetricsAddr; nil when unset.
	metricsLis net.Listener
	revs       *revisionPicker
	// writes is the write path (Write, Delete, WriteSchema, Import).
	writes *writes.Writer
	// tracer makes the spans of tracing.go; nil when Config.TracerProvider is.
	tracer trace.Tracer
	// stopping is closed when shutdown begins, so that endless streams (Watch) end
	// and let GracefulStop finish.
	stopping chan struct{}
}

// New validates cfg, binds the gRPC and HTTP listeners and registers the services. It
// does not serve: call Serve. On error nothing stays bound.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:           cfg,
		log:           cfg.Logger,
		metrics:       cfg.Metrics,
		gatewaySecret: rand.Text(),
		requestIDs:    newRequestIDs(),
		revs:          newRevisionPicker(cfg.Store, zookies{tuples.NewZookies(cfg.Store.Identity())}, cfg.Quantization),
		stopping:      make(chan struct{}),
	}
	s.writes = writes.New(writes.Config{Store: cfg.Store, Engine: cfg.Engine, Observe: s.revs.observe})
	if cfg.TracerProvider != nil {
		s.tracer = cfg.TracerProvider.Tracer(tracerName)
	}
	var err error
	if s.auth, err = newAuthenticator(cfg); err != nil {
		return nil, err
	}
	s.conns = newConnLimiter(cfg.MaxConnections, cfg.Logger)
	if s.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("gRPC listener: %w", err)
	}
	if s.httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		s.grpcLis.Close()
		return nil, fmt.Errorf("HTTP listener: %w", err)
	}
	if cfg.MetricsAddr != "" {
		if s.metricsLis, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			s.grpcLis.Close()
			s.httpLis.Close()
			return nil, fmt.Errorf("metrics listener: %w", err)
		}
	}
	s.grpcLis = &limitedListener{Listener: s.grpcLis, l: s.conns, evict: true}
	s.httpLis = &limitedListener{Listener: s.httpLis, l: s.conns, evict: true}
	grpcTLS, httpTLS := cfg.TLS, cfg.TLS
	if cfg.Certs != nil {
		grpcTLS, httpTLS = cfg.Certs.TLSConfig("h2"), cfg.Certs.TLSConfig("h2", "http/1.1")
	} else if httpTLS != nil && len(httpTLS.NextProtos) == 0 {
		httpTLS = httpTLS.Clone()
		httpTLS.NextProtos = []string{"h2", "http/1.1"}
	}
	if httpTLS != nil {
		s.httpLis = tls.NewListener(s.httpLis, httpTLS)
	}
	s.metrics.register(cfg.Engine, cfg.Store)
	opts := []grpc.ServerOption{
		grpc.NumStreamWorkers(streamWorkers),
		grpc.MaxRecvMsgSize(cfg.MaxMessageBytes),
		grpc.MaxSendMsgSize(cfg.MaxMessageBytes),
		// Malformed request messages are INVALID_ARGUMENT, after auth (codec.go).
		grpc.ForceServerCodecV2(newLenientCodec()),
	}
	unary := []grpc.UnaryServerInterceptor{s.recoverUnary, s.observeUnary, s.guardUnary}
	stream := []grpc.StreamServerInterceptor{s.recoverStream, s.metricsStream, s.logStream, s.authStream, s.badMessageStream}
	if s.tracer != nil {
		unary = append([]grpc.UnaryServerInterceptor{unary[0], s.traceUnary}, unary[1:]...)
		stream = append([]grpc.StreamServerInterceptor{stream[0], s.traceStream}, stream[1:]...)
	}
	opts = append(opts, grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...))
	if grpcTLS != nil {
		s.gwLis = bufconn.Listen(1 << 20)
		s.gwGRPC = grpc.NewServer(opts...)
		s.registerAPI(s.gwGRPC)
		opts = append(opts, grpc.Creds(credentials.NewTLS(grpcTLS)))
	}
	opts = append(opts, cfg.grpcKeepalive()...)
	s.grpc = grpc.NewServer(opts...)
	s.registerAPI(s.grpc)
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	return s, nil
}

// registerAPI registers the Relata services on g.
func (s *Server) registerAPI(g *grpc.Server) {
	relatav1.RegisterPermissionServiceServer(g, &permissionService{s: s})
	relatav1.RegisterRelationshipServiceServer(g, &relationshipService{s: s})
	relatav1.RegisterSchemaServiceServer(g, &schemaService{s: s})
	relatav1.RegisterAdminServiceServer(g, &adminService{s: s})
}

// ReloadTLS reloads Config.Certs (on SIGHUP): new connections use the new files,
// open ones keep theirs. Without Config.Certs it does nothing.
func (s *Server) ReloadTLS() error {
	if s.cfg.Certs == nil {
		return nil
	}
	return s.cfg.Certs.Reload()
}

// Close releases the listeners of a Server that New bound but that will not Serve
// (its caller failed to set up). It must not be called together with Serve.
func (s *Server) Close() error {
	err := errors.Join(s.grpcLis.Close(), s.httpLis.Close())
	if s.metricsLis != nil {
		err = errors.Join(err, s.metricsLis.Close())
	}
	if s.gwLis != nil {
		err = errors.Join(err, s.gwLis.Close())
	}
	return err
}

// GRPCAddr is the address the gRPC listener is bound to.
func (s *Server) GRPCAddr() net.Addr { return s.grpcLis.Addr() }

// HTTPAddr is the address the REST listener is bound to.
func (s *Server) HTTPAddr() net.Addr { return s.httpLis.Addr() }

// MetricsAddr is the address of the Config.MetricsAddr listener, nil when unset.
func (s *Server) MetricsAddr() net.Addr {
	if s.metricsLis == nil {
		return nil
	}
	return s.metricsLis.Addr()
}

// Serve serves gRPC and REST until ctx ends, then shuts down gracefully: health turns
// NOT_SERVING, REST stops accepting and finishes in-flight requests, gRPC finishes
// in-flight RPCs (GracefulStop), each within Config.ShutdownTimeout, after which the
// rest are cut off. It returns nil after a clean shutdown, or the first serving
// error. A Server serves once.
func (s *Server) Serve(ctx context.Context) error {
	conn, err := s.dialLoopback()
	if err != nil {
		s.Close()
		return err
	}
	defer conn.Close()
	handler, err := s.httpHandler(ctx, conn)
	if err != nil {
		s.Close()
		return err
	}
	httpSrv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		IdleTimeout:       s.cfg.HTTPIdleTimeout,
		ConnState:         s.conns.connState,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	// The server as a whole ("") and each service by its full name.
	for _, name := range []string{"", relatav1.PermissionService_ServiceDesc.ServiceName,
		relatav1.RelationshipService_ServiceDesc.ServiceName, relatav1.SchemaService_ServiceDesc.ServiceName} {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.log.InfoContext(ctx, "relata: serving", "grpc", s.GRPCAddr().String(), "http", s.HTTPAddr().String())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := s.grpc.Serve(s.grpcLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("gRPC: %w", err)
		}
		return nil
	})
	if s.gwGRPC != nil {
		g.Go(func() error {
			if err := s.gwGRPC.Serve(s.gwLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				return fmt.Errorf("gateway gRPC: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		// The nested-set index (check/closure.go), kept current from the change log;
		// checks and lookups walk the store until it is built, or when it lags.
		_ = s.cfg.Engine.FollowChanges(gctx, s.cfg.Store, check.FollowOptions{})
		return nil
	})
	g.Go(func() error {
		if err := httpSrv.Serve(s.httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("HTTP: %w", err)
		}
		return nil
	})
	var metricsSrv *http.Server
	if s.metricsLis != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.metrics.handler(httpSrv.ErrorLog))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: httpSrv.ErrorLog}
		g.Go(func() error {
			if err := metricsSrv.Serve(s.metricsLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("metrics HTTP: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		if metricsSrv != nil {
			defer metricsSrv.Close()
		}
		s.shutdown(httpSrv)
		return nil
	})
	s.watchCredentials(gctx, g)
	return g.Wait()
}

// shutdown stops REST, then gRPC, each gracefully within the shutdown timeout.
func (s *Server) shutdown(httpSrv *http.Server) {
	s.log.Info("relata: shutting down")
	close(s.stopping)
	s.health.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(ctx); err != nil {
		s.log.Warn("relata: HTTP shutdown cut off in-flight requests", "err", err)
		httpSrv.Close()
	}
	done := make(chan struct{})
	go func() {
		if s.gwGRPC != nil {
			s.gwGRPC.GracefulStop()
		}
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("relata: gRPC shutdown cut off in-flight RPCs")
		if s.gwGRPC != nil {
			s.gwGRPC.Stop()
		}
		s.grpc.Stop()
		<-done
	}
	s.log.Info("relata: stopped")
}

// dialLoopback opens the gateway's client connection to our own gRPC listener.
func (s *Server) dialLoopback() (*grpc.ClientConn, error) {
	addr := s.grpcLis.Addr().String()
	if tcp, ok := s.grpcLis.Addr().(*net.TCPAddr); ok && (tcp.IP == nil || tcp.IP.IsUnspecified()) {
		addr = net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
	}
	dial := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if s.gwLis != nil {
		// With TLS the gateway calls the in-process server (see gwGRPC).
		addr = "passthrough:///relata-gateway"
		dial = append(dial, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return s.gwLis.DialContext(ctx)
		}))
	}
	conn, err := grpc.NewClient(addr, append(dial,
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(s.cfg.MaxMessageBytes),
			grpc.MaxCallSendMsgSize(s.cfg.MaxMessageBytes)))...,
	)
	if err != nil {
		return nil, fmt.Errorf("loopback connection for the REST gateway: %w", err)
	}
	return conn, nil
}
