package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

// handlerError carries an error returned by a caller's function through a stream
// loop, so that it is returned as it is and never retried.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }

// resumeStream runs a streamed read to its end. open starts the stream after cursor
// ("" from the start), handle takes each message and cursorOf gives the cursor that
// resumes after it. When the stream fails with UNAVAILABLE (a server restarting, a
// cut connection), it is opened again after the last message handled, with backoff,
// up to retryAttempts times without progress and while ctx lasts; other errors, and
// handle's, end it.
func resumeStream[T any](ctx context.Context, cursor string, open func(ctx context.Context, cursor string) (func() (T, error), error),
	cursorOf func(T) string, handle func(T) error) error {
	delay := retryFirst
	attempts := 1
	for {
		resumable := true
		err := func() error {
			sctx, cancel := context.WithCancel(ctx)
			defer cancel()
			recv, err := open(sctx, cursor)
			if err != nil {
				return err
			}
			for {
				msg, err := recv()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
				attempts, delay = 1, retryFirst
				if c := cursorOf(msg); c != "" {
					cursor = c
				} else {
					resumable = false // nothing to resume after this message from
				}
				if err := handle(msg); err != nil {
					return handlerError{err}
				}
			}
		}()
		var herr handlerError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &herr):
			return herr.err
		case status.Code(err) != codes.Unavailable || !resumable || attempts >= retryAttempts || ctx.Err() != nil:
			return FromStatus(err)
		}
		if err := sleep(ctx, delay); err != nil {
			return err
		}
		attempts++
		delay = min(2*delay, retryMax)
	}
}

// sleep waits for d or until ctx ends (its error).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Change is one change of the tuples a Watch reports.
type Change struct {
	// Op is tuples.OpTouch (written) or tuples.OpDelete (deleted).
	Op    tuples.Operation
	Tuple tuples.Tuple
	// Revision is the zookie of the revision of the change.
	Revision string
}

// WatchBatch is one response of a Watch: changes in commit order, and the zookie
// through which every change has been sent.
type WatchBatch struct {
	Changes []Change
	// ChangesThrough is the zookie to resume from (WatchOptions.From) without a gap or
	// a repeat. A batch may carry no changes and only advance it.
	ChangesThrough string
	// Proto is the response as received.
	Proto *relatav1.WatchResponse
}

// DefaultWatchReconnect is how long Watch keeps reconnecting to an unavailable server
// when WatchOptions.Reconnect is zero.
const DefaultWatchReconnect = time.Minute

// WatchOptions selects the changes of a Watch.
type WatchOptions struct {
	// ObjectTypes restricts the changes to these object types; empty means all.
	ObjectTypes []string
	// From is the zookie after which changes are sent; empty means from now.
	From string
	// Reconnect is how long Watch keeps reconnecting to a server that is unavailable
	// (restarting, unreachable, or ending the stream) before it gives up; zero means
	// DefaultWatchReconnect, negative gives up at the first failure.
	Reconnect time.Duration
}

// Watch streams the changes of the tuples to fn, one response at a time, until ctx
// ends (it returns ctx's error), fn fails (its error) or the server refuses the
// watch. When the stream breaks (the server restarts, the connection is cut, the
// server ends the stream), Watch reconnects from the last ChangesThrough it saw, so
// fn sees every change exactly once. It returns the zookie to resume from: the last
// ChangesThrough, or opts.From when none came.
func (c *Client) Watch(ctx context.Context, opts WatchOptions, fn func(WatchBatch) error) (string, error) {
	through := opts.From
	reconnect := opts.Reconnect
	if reconnect == 0 {
		reconnect = DefaultWatchReconnect
	}
	var down time.Time // when the server became unavailable; zero while connected
	delay := retryFirst
	for {
		err := c.watchOnce(ctx, opts.ObjectTypes, through, func(resp *relatav1.WatchResponse) error {
			down, delay = time.Time{}, retryFirst
			b := WatchBatch{ChangesThrough: resp.GetChangesThrough(), Proto: resp}
			for _, ch := range resp.GetChanges() {
				op := tuples.OpTouch
				if ch.GetOperation() == relatav1.Operation_OPERATION_DELETE {
					op = tuples.OpDelete
				}
				b.Changes = append(b.Changes, Change{Op: op, Tuple: TupleFromProto(ch.GetTuple()), Revision: ch.GetRevision()})
			}
			if err := fn(b); err != nil {
				return handlerError{err}
			}
			if b.ChangesThrough != "" {
				through = b.ChangesThrough
			}
			return nil
		})
		if ctx.Err() != nil {
			return through, ctx.Err()
		}
		var herr handlerError
		if errors.As(err, &herr) {
			return through, herr.err
		}
		var cerr *Error
		if !errors.As(err, &cerr) || cerr.Code != codes.Unavailable || reconnect < 0 {
			return through, err
		}
		if down.IsZero() {
			down = time.Now()
		}
		if time.Since(down) > reconnect {
			return through, fmt.Errorf("watch: server unavailable for %s: %w", reconnect.Round(time.Second), err)
		}
		if err := sleep(ctx, delay); err != nil {
			return through, err
		}
		delay = min(2*delay, retryMax)
	}
}

// watchOnce runs one Watch call until it fails; the server ending the stream is
// UNAVAILABLE.
func (c *Client) watchOnce(ctx context.Context, types []string, from string, fn func(*relatav1.WatchResponse) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.tuples.Watch(ctx, &relatav1.WatchRequest{ObjectTypes: types, From: from})
	if err != nil {
		return FromStatus(err)
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return &Error{Code: codes.Unavailable, Reason: relatav1.ErrorReason_UNAVAILABLE.String(), Message: "watch: the server ended the stream"}
		}
		if err != nil {
			return FromStatus(err)
		}
		if err := fn(resp); err != nil {
			return err
		}
	}
}

// ImportBatchSize is how many tuples Import sends in one message.
const ImportBatchSize = 1000

// Import writes every tuple of ts with touch semantics over one Import stream and
// returns how many tuples the server wrote and the zookie of the last revision
// written. It is not retried: a failed Import may have committed part of the tuples
// (touching them again is harmless, so the caller may run it again).
func (c *Client) Import(ctx context.Context, ts iter.Seq[tuples.Tuple]) (imported uint64, writtenAt string, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.tuples.Import(ctx)
	if err != nil {
		return 0, "", FromStatus(err)
	}
	batch := make([]*relatav1.Tuple, 0, ImportBatchSize)
	send := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := stream.Send(&relatav1.ImportRequest{Tuples: batch})
		batch = make([]*relatav1.Tuple, 0, ImportBatchSize)
		return err
	}
	var sendErr error
	for t := range ts {
		batch = append(batch, TupleProto(t))
		if len(batch) == ImportBatchSize {
			if sendErr = send(); sendErr != nil {
				break
			}
		}
	}
	if sendErr == nil {
		sendErr = send()
	}
	// A Send that fails with io.EOF means the server ended the call: its status,
	// which CloseAndRecv returns, says why.
	if sendErr != nil && !errors.Is(sendErr, io.EOF) {
		return 0, "", FromStatus(sendErr)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return 0, "", FromStatus(err)
	}
	return resp.GetImported(), resp.GetWrittenAt(), nil
}

// ExportOptions selects an export.
type ExportOptions struct {
	// At is the zookie of the revision to export; empty means the newest.
	At string
	// Cursor continues an export from a cursor it gave (it pins the revision and the
	// filter).
	Cursor string
	// Filter, when set, exports only the matching tuples (see ParseFilter).
	Filter *relatav1.TupleFilter
}

// Export streams every tuple live at one revision to fn, a batch at a time in
// canonical order, with the cursor that resumes the export after that batch, and
// returns the zookie of the revision exported. A stream cut by an unavailable server
// resumes after the last batch fn received.
func (c *Client) Export(ctx context.Context, opts ExportOptions, fn func(batch []tuples.Tuple, cursor string) error) (string, error) {
	var exportedAt string
	err := resumeStream(ctx, opts.Cursor,
		func(ctx context.Context, cursor string) (func() (*relatav1.ExportResponse, error), error) {
			req := &relatav1.ExportRequest{At: opts.At, Cursor: cursor, Filter: opts.Filter}
			if cursor != "" {
				req.At = "" // the cursor pins the revision
			}
			s, err := c.tuples.Export(ctx, req)
			if err != nil {
				return nil, err
			}
			return s.Recv, nil
		},
		(*relatav1.ExportResponse).GetCursor,
		func(resp *relatav1.ExportResponse) error {
			exportedAt = resp.GetExportedAt()
			batch := make([]tuples.Tuple, len(resp.GetTuples()))
			for i, t := range resp.GetTuples() {
				batch[i] = TupleFromProto(t)
			}
			return fn(batch, resp.GetCursor())
		})
	return exportedAt, err
}
