package cli

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// otlpTracerProvider returns the tracer provider of `serve --otlp-endpoint`: spans
// batched to an OTLP/gRPC collector at endpoint, which is HOST:PORT (plaintext on a
// loopback address, TLS with the system roots otherwise), http://HOST:PORT
// (plaintext) or https://HOST:PORT (TLS). Sampling follows the caller's sampled flag,
// and samples every trace that starts at Relata. shutdown flushes the last spans.
func otlpTracerProvider(ctx context.Context, endpoint, version string) (tp *sdktrace.TracerProvider, shutdown func(), err error) {
	hostport, plaintext, err := parseOTLPEndpoint(endpoint)
	if err != nil {
		return nil, nil, err
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(hostport)}
	if plaintext {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("--otlp-endpoint %s: %w", endpoint, err)
	}
	tp = sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "relata"), attribute.String("service.version", version))),
	)
	return tp, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx)
	}, nil
}

// parseOTLPEndpoint returns the HOST:PORT of an --otlp-endpoint and whether it is
// plaintext.
func parseOTLPEndpoint(endpoint string) (string, bool, error) {
	bad := func(why string) (string, bool, error) {
		return "", false, usageError("serve: --otlp-endpoint %q: %s: want HOST:PORT, http://HOST:PORT or https://HOST:PORT", endpoint, why)
	}
	hostport, plaintext := endpoint, false
	switch {
	case strings.HasPrefix(endpoint, "http://"), strings.HasPrefix(endpoint, "https://"):
		u, err := url.Parse(endpoint)
		if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return bad("not a URL of a host and port")
		}
		hostport, plaintext = u.Host, u.Scheme == "http"
	case strings.Contains(endpoint, "://"):
		return bad("unknown scheme")
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || port == "" {
		return bad("no port")
	}
	if !strings.Contains(endpoint, "://") {
		ip := net.ParseIP(host)
		plaintext = host == "localhost" || (ip != nil && ip.IsLoopback())
	}
	return hostport, plaintext, nil
}
