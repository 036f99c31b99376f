package pgstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relata/relata/tuples"
)

// RedactURL returns the datastore URL with its password replaced by "xxxxx", for
// logs and errors. A string that does not parse as a URL is returned as
// "postgres://(unparsable URL)" rather than echoed.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return "postgres://(unparsable URL)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// parseConfig parses a datastore URL into a pool configuration. Its errors never
// contain the password.
func parseConfig(raw string) (*pgxpool.Config, error) {
	if !strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://") {
		return nil, fmt.Errorf("datastore %s: want a URL postgres://USER@HOST:PORT/DB?sslmode=…", RedactURL(raw))
	}
	cfg, err := pgxpool.ParseConfig(raw)
	if err != nil {
		// pgconn redacts the password in its parse errors; say which URL anyway.
		return nil, fmt.Errorf("datastore %s: %s", RedactURL(raw), redactErr(err.Error(), raw))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	return cfg, nil
}

// redactErr removes the URL's password from msg, in case an error quotes it.
func redactErr(msg, raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

// hasParam reports whether the URL's query sets name.
func hasParam(raw, name string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Query().Has(name)
}

// classify wraps a database error. A context's end is returned as itself; an error
// reaching the database (connection refused or lost, the server shutting down or
// refusing connections) wraps tuples.ErrUnavailable, so that callers fail fast with
// UNAVAILABLE and retry; anything else is wrapped as is (an internal error).
func classify(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err)) {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	if errors.Is(err, tuples.ErrClosed) || errors.Is(err, tuples.ErrUnavailable) {
		return err
	}
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %v", what, tuples.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// unavailable reports whether err means the database could not be reached or
// dropped the connection, rather than refused a statement.
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", // admin_shutdown
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03", // cannot_connect_now
			pgErr.Code == "53300", // too_many_connections
			pgErr.Code == "40001", // serialization_failure: retryable
			pgErr.Code == "40P01": // deadlock_detected: retryable
			return true
		}
		return false
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	// Any other error from the driver that is not a statement's error is the
	// connection's: EOF, reset, closed, timeouts.
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// commitError classifies the error of a COMMIT. A statement error from the server
// means the transaction did not commit. When the connection broke after the COMMIT
// may have reached the server, nobody can tell whether it committed: that is
// tuples.ErrWriteOutcomeUnknown, never a success or a plain failure.
func commitError(ctx context.Context, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return classify(ctx, "commit", err)
	}
	if pgconn.SafeToRetry(err) {
		// Nothing was sent: the transaction did not commit.
		return fmt.Errorf("commit: %w: %v", tuples.ErrUnavailable, err)
	}
	return fmt.Errorf("commit: %w: %v", tuples.ErrWriteOutcomeUnknown, err)
}
