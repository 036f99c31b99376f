package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	"github.com/relata/relata/tuples"
)

// WriteHealth is an optional capability of a tuples.Store: WriteHealth returns nil
// while writes can commit, and the reason they cannot otherwise (a full disk, an I/O
// error). /readyz reports not ready while it fails.
type WriteHealth interface {
	WriteHealth() error
}

// readiness returns nil when the server is ready to serve: not shutting down, the
// store open and answering, a schema loaded, and writes able to commit. Otherwise it
// returns why not.
func (s *Server) readiness(ctx context.Context) error {
	select {
	case <-s.stopping:
		return errors.New("shutting down")
	default:
	}
	head, err := s.cfg.Store.HeadRevision(ctx)
	if err != nil {
		return err
	}
	r, err := s.cfg.Store.ReaderAt(ctx, head)
	if err != nil {
		return err
	}
	if _, _, err := r.Schema(ctx); err != nil {
		if errors.Is(err, tuples.ErrNoSchema) {
			return errors.New("no schema loaded: write one with `relata schema write FILE`")
		}
		return err
	}
	if wh, ok := s.cfg.Store.(WriteHealth); ok {
		if err := wh.WriteHealth(); err != nil {
			return err
		}
	}
	return nil
}

// errorReason returns the ErrorInfo reason of a status error, or "".
func errorReason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// serveReadyz answers 200 {"status":"READY"} when readiness holds, else 503
// {"status":"NOT_READY","error":WHY}. It needs no credential.
func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.readiness(r.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "NOT_READY", "error": err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "READY"})
}
