package cli

// The bulk commands: import, export and watch.
//
// Import pipeline. A parser goroutine reads the input with a tuples.Scanner, parses
// each line (text form or the proto Tuple's JSON), validates it against the server's
// schema compiled locally (so a bad line is found before anything after it is sent),
// and packs the good tuples into ImportRequest batches. A sender goroutine streams the
// batches over Import RPCs; each RPC carries one chunk (--chunk tuples), and a closer
// goroutine ends the RPCs in order, so the server's reply says exactly which lines are
// committed while the next chunk is already streaming. Progress reports name the last
// committed line; a killed import restarts with --resume-from the line after it, and
// since import is TOUCH, re-sending committed lines is harmless.
//
// Interrupts. The first SIGINT or SIGTERM (the end of the command's context) stops
// reading and sending; the calls under way are then closed normally, on a context the
// interrupt does not cancel, so the server commits what it received and says how
// many tuples that was: the stop message gives that exact count and the line to
// resume from. A second interrupt abandons the calls; the count is then a lower bound.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/relata/relata/client"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// addBulkCommands registers `relata import`, `relata export` and `relata watch`.
func addBulkCommands(root *cobra.Command, s *streams) {
	root.AddCommand(newImportCmd(s), newExportCmd(s), newWatchCmd(s))
}

// importFlags are the flags of `relata import`.
type importFlags struct {
	format      string
	batchSize   int
	chunkSize   int
	dryRun      bool
	skipInvalid bool
	maxErrors   int
	resumeFrom  int
	progress    string
	interval    time.Duration
}

func newImportCmd(s *streams) *cobra.Command {
	fl := &importFlags{}
	cmd, cf := clientCommand("import [FILE|-]", "Import tuples from a file (one a line) with touch semantics",
		cobra.MaximumNArgs(1))
	cmd.Long = `Import tuples from FILE (or standard input, "-" or no FILE) into the server, with
touch semantics: tuples already stored are kept, so re-running an import is safe.

The input is the text form, one tuple a line (blank lines and // comments skipped),
or with --format json one proto Tuple JSON object a line (what export --json
prints). Every line is checked against the server's schema first. The first bad
line stops the import with FILE:LINE, the reason and the line, after committing the
lines before it, and says which line to resume from; --skip-invalid imports the good
lines and lists the bad ones;
--dry-run only checks the file and lists every bad line.

Progress goes to standard output: a bar on a terminal, else a line every
--interval naming the last committed line. A killed import resumes with
--resume-from LINE. Ctrl-C (SIGINT) or SIGTERM stops reading and sending, lets the
server commit what it was sent, and prints exactly how many tuples it committed and
the line to resume from; a second interrupt abandons the call in flight. The summary
gives the count, seconds, rate and zookie.`
	f := cmd.Flags()
	f.StringVar(&fl.format, "format", "text", "input format: text or json")
	f.IntVar(&fl.batchSize, "batch-size", 2000, "tuples per Import message")
	f.IntVar(&fl.chunkSize, "chunk", 100000, "tuples per Import call; progress names the last line of each committed chunk")
	f.BoolVar(&fl.dryRun, "dry-run", false, "check every line against the schema, write nothing")
	f.BoolVar(&fl.skipInvalid, "skip-invalid", false, "import the good lines and list the bad ones")
	f.IntVar(&fl.maxErrors, "max-errors", 100, "most bad lines listed by --dry-run and --skip-invalid")
	f.IntVar(&fl.resumeFrom, "resume-from", 0, "skip the lines before LINE (resume a killed import)")
	f.StringVar(&fl.progress, "progress", "auto", "progress output: auto (a bar on a terminal, else lines), bar, lines or none")
	f.DurationVar(&fl.interval, "interval", 5*time.Second, "how often progress lines are printed")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := fl.validate(); err != nil {
			return err
		}
		name := "-"
		if len(args) == 1 {
			name = args[0]
		}
		in, size, err := openInput(s, name)
		if err != nil {
			return err
		}
		defer in.Close()
		c, err := cf.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		imp := &importer{c: c, name: name, in: in, size: size, flags: fl, s: s, json: cf.json}
		return imp.run(cmd.Context())
	}
	return cmd
}

func (fl *importFlags) validate() error {
	switch {
	case fl.format != "text" && fl.format != "json":
		return usageError("import: --format %q: want text or json", fl.format)
	case fl.batchSize < 1:
		return usageError("import: --batch-size must be at least 1")
	case fl.chunkSize < 1:
		return usageError("import: --chunk must be at least 1")
	case fl.dryRun && fl.skipInvalid:
		return usageError("import: --dry-run and --skip-invalid exclude each other")
	case fl.maxErrors < 1:
		return usageError("import: --max-errors must be at least 1")
	case fl.resumeFrom < 0:
		return usageError("import: --resume-from must be a line number")
	case fl.progress != "auto" && fl.progress != "bar" && fl.progress != "lines" && fl.progress != "none":
		return usageError("import: --progress %q: want auto, bar, lines or none", fl.progress)
	case fl.interval <= 0:
		return usageError("import: --interval must be positive")
	}
	return nil
}

// openInput opens FILE or standard input ("-") and returns its size when known.
func openInput(s *streams, name string) (io.ReadCloser, int64, error) {
	if name == "-" {
		return io.NopCloser(s.in), 0, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, fmt.Errorf("import: %w", err)
	}
	var size int64
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, size, nil
}

// importer runs one import.
type importer struct {
	c     *client.Client
	name  string
	in    io.Reader
	size  int64
	flags *importFlags
	s     *streams
	json  bool
	sch   *schema.Schema

	// Set by the parser; read after it ends.
	bad      []*tuples.LineError // listed bad lines (at most --max-errors)
	badCount int                 // all bad lines
	stopErr  *tuples.LineError   // the bad line that stopped a plain import
	lastLine int                 // last line read
	// inputDone is set by the parser when it has read (and handed on) the whole
	// input or stopped at a bad line; until then, the fields above are its own.
	inputDone atomic.Bool

	// stoppedEarly is set by the sender when an interrupt made it stop before the
	// end of the input; abandoned when a second interrupt cancelled the calls.
	stoppedEarly atomic.Bool
	abandoned    atomic.Bool

	// Progress, updated atomically by the pipeline and read by the reporter.
	offset        atomic.Int64 // input bytes read
	parsed        atomic.Int64 // good tuples parsed
	committed     atomic.Int64 // tuples committed
	committedLine atomic.Int64 // every good line up to this one is committed
	zookie        atomic.Value // string: the newest written_at
}

// importBatch is one ImportRequest and the input line of each of its tuples.
type importBatch struct {
	req      *relatav1.ImportRequest
	lines    []int32
	lastLine int // last input line consumed for this batch (bad or good)
}

// importCall is one Import RPC: its stream and what was sent on it.
type importCall struct {
	stream     relatav1.RelationshipService_ImportClient
	batches    []*importBatch
	count      int
	lastLine   int
	sendFailed bool // the server ended the call before everything was sent
}

func (imp *importer) run(ctx context.Context) error {
	text, _, err := imp.c.ReadSchema(ctx, client.FullyConsistent())
	if err != nil {
		return oneLine(fmt.Errorf("import: reading the server's schema: %w", err))
	}
	if imp.sch, err = schema.Compile("schema", []byte(text)); err != nil {
		return oneLine(fmt.Errorf("import: compiling the server's schema: %w", err))
	}
	imp.zookie.Store("")
	imp.committedLine.Store(int64(max(imp.flags.resumeFrom-1, 0)))
	start := time.Now()
	stopProgress := imp.startProgress(start)

	// The calls run on rpcCtx, which the first interrupt (ctx) does not end; a
	// second one does (abandon).
	rpcCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	defer onSecondInterrupt(func() {
		imp.abandoned.Store(true)
		abandon()
	})()

	g, gctx := errgroup.WithContext(rpcCtx)
	batches := make(chan *importBatch, 4)
	// The parser is not waited for: after an interrupt it may be blocked reading
	// the input (a terminal, a pipe). It stops at the interrupt or when run returns.
	parsed := make(chan error, 1)
	parseCtx, stopParse := context.WithCancel(ctx)
	defer stopParse()
	go func() {
		defer close(batches)
		parsed <- imp.parse(parseCtx, batches)
	}()
	calls := make(chan *importCall, 1)
	g.Go(func() error {
		defer close(calls)
		return imp.send(gctx, ctx.Done(), batches, calls)
	})
	g.Go(func() error { return imp.close(calls) })
	err = g.Wait()
	stopProgress()
	elapsed := time.Since(start)
	switch {
	case err != nil:
	case imp.stoppedEarly.Load():
		err = context.Canceled // interrupted
	default:
		// The sender saw the end of the batches: the parser has returned.
		err = <-parsed
	}
	if err != nil {
		stopParse()
		return imp.failed(err)
	}
	return imp.summary(elapsed)
}

// onSecondInterrupt calls abandon on the second SIGINT or SIGTERM the process gets
// from now on (the first one ends the command's context), until the returned
// function is called.
func onSecondInterrupt(abandon func()) (stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	quit := make(chan struct{})
	go func() {
		for n := 0; ; {
			select {
			case <-sigs:
				if n++; n == 2 {
					abandon()
					return
				}
			case <-quit:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(quit)
	}
}

// parse reads the input and sends batches of valid tuples; see the file comment.
func (imp *importer) parse(ctx context.Context, out chan<- *importBatch) error {
	sc := tuples.NewScanner(imp.in)
	bs := imp.flags.batchSize
	b := newImportBatch(bs)
	flush := func() error {
		if len(b.req.Tuples) == 0 && b.lastLine == 0 {
			return nil
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
		b = newImportBatch(bs)
		return nil
	}
	var slab tupleSlab
	for sc.Scan() {
		line := sc.Line()
		imp.lastLine = line
		if line&255 == 0 && ctx.Err() != nil {
			return ctx.Err() // interrupted: stop reading
		}
		if line&1023 == 0 {
			imp.offset.Store(sc.Offset())
		}
		if line < imp.flags.resumeFrom {
			continue
		}
		text := sc.Text()
		t, err := imp.parseLine(text)
		if err != nil {
			lerr := &tuples.LineError{Name: imp.name, Line: line, Text: text, Err: err}
			if !imp.flags.dryRun && !imp.flags.skipInvalid {
				imp.stopErr = lerr
				break
			}
			if imp.badCount++; len(imp.bad) < imp.flags.maxErrors {
				imp.bad = append(imp.bad, lerr)
			}
			b.lastLine = line
			continue
		}
		imp.parsed.Add(1)
		b.req.Tuples = append(b.req.Tuples, slab.tuple(t))
		b.lines = append(b.lines, int32(line))
		b.lastLine = line
		if len(b.req.Tuples) == bs {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	imp.offset.Store(sc.Offset())
	if err := sc.Err(); err != nil {
		var lerr *tuples.LineError
		if errors.As(err, &lerr) {
			lerr.Name = imp.name
		}
		return fmt.Errorf("import: %w", err)
	}
	if err := flush(); err != nil {
		return err
	}
	imp.inputDone.Store(true)
	return nil
}

// parseLine parses one line and checks it against the schema.
func (imp *importer) parseLine(text string) (tuples.Tuple, error) {
	var t tuples.Tuple
	if imp.flags.format == "json" {
		var pt relatav1.Tuple
		if err := protojson.Unmarshal([]byte(text), &pt); err != nil {
			return t, fmt.Errorf("invalid JSON tuple: %w", err)
		}
		t = client.TupleFromProto(&pt)
		if err := t.Validate(); err != nil {
			return t, err
		}
	} else {
		var err error
		if t, err = tuples.ParseTuple(text); err != nil {
			return t, err
		}
	}
	return t, imp.sch.ValidateTuple(t)
}

func newImportBatch(n int) *importBatch {
	return &importBatch{
		req:   &relatav1.ImportRequest{Tuples: make([]*relatav1.Tuple, 0, n)},
		lines: make([]int32, 0, n),
	}
}

// tupleSlab allocates proto tuples in blocks, four messages a tuple in one go.
type tupleSlab struct {
	tups []relatav1.Tuple
	objs []relatav1.ObjectRef
	subs []relatav1.SubjectRef
}

const slabSize = 1024

func (s *tupleSlab) tuple(t tuples.Tuple) *relatav1.Tuple {
	if len(s.tups) == 0 {
		s.tups = make([]relatav1.Tuple, slabSize)
		s.objs = make([]relatav1.ObjectRef, 2*slabSize)
		s.subs = make([]relatav1.SubjectRef, slabSize)
	}
	pt, obj, sobj, sub := &s.tups[0], &s.objs[0], &s.objs[1], &s.subs[0]
	s.tups, s.objs, s.subs = s.tups[1:], s.objs[2:], s.subs[1:]
	obj.Type, obj.Id = t.Object.Type, t.Object.ID
	sobj.Type, sobj.Id = t.Subject.Object.Type, t.Subject.Object.ID
	sub.Object, sub.Relation = sobj, t.Subject.Relation
	pt.Object, pt.Relation, pt.Subject = obj, t.Relation, sub
	return pt
}

// send streams the batches over Import calls of --chunk tuples and hands each call,
// once fully sent, to the closer. When stop closes (an interrupt), it sends nothing
// more and hands the call under way to the closer as it is. In a dry run it only
// consumes the batches.
func (imp *importer) send(ctx context.Context, stop <-chan struct{}, batches <-chan *importBatch, calls chan<- *importCall) error {
	var cur *importCall
	handOff := func() error {
		select {
		case calls <- cur:
		case <-ctx.Done():
			return ctx.Err()
		}
		cur = nil
		return nil
	}
	for {
		var b *importBatch
		select {
		case b = <-batches:
		case <-stop:
		case <-ctx.Done():
			return ctx.Err()
		}
		if b == nil {
			select {
			case <-stop:
				imp.stoppedEarly.Store(true)
			default: // the end of the input
			}
			break
		}
		if imp.flags.dryRun {
			continue
		}
		if cur == nil {
			stream, err := imp.c.Relationships().Import(ctx)
			if err != nil {
				return fmt.Errorf("import: %w", client.FromStatus(err))
			}
			cur = &importCall{stream: stream}
		}
		cur.batches = append(cur.batches, b)
		cur.lastLine = b.lastLine
		if len(b.req.Tuples) > 0 {
			if err := cur.stream.Send(b.req); err != nil {
				// The server ended the call (io.EOF): the closer reads why and
				// fails, and run stops the parser.
				cur.sendFailed = true
				return handOff()
			}
		}
		if cur.count += len(b.req.Tuples); cur.count >= imp.flags.chunkSize {
			if err := handOff(); err != nil {
				return err
			}
		}
	}
	if cur != nil {
		return handOff()
	}
	return nil
}

// close ends the calls in order and records what each committed.
func (imp *importer) close(calls <-chan *importCall) error {
	for call := range calls {
		resp, err := call.stream.CloseAndRecv()
		if err != nil {
			return imp.callError(call, err)
		}
		if call.sendFailed {
			return errors.New("import: the server ended an Import call before it was fully sent")
		}
		imp.committed.Add(int64(resp.GetImported()))
		imp.committedLine.Store(int64(call.lastLine))
		imp.zookie.Store(resp.GetWrittenAt())
	}
	return nil
}

// callError turns the error of a call into a *tuples.LineError when the server blames
// one tuple, and adds what the call committed before it.
func (imp *importer) callError(call *importCall, err error) error {
	err = client.FromStatus(err)
	var cerr *client.Error
	if !errors.As(err, &cerr) {
		return fmt.Errorf("import: %w", err)
	}
	if n, perr := strconv.ParseInt(cerr.Metadata["imported"], 10, 64); perr == nil {
		imp.committed.Add(n)
	}
	idx, perr := strconv.Atoi(cerr.Metadata["index"])
	if perr != nil {
		return fmt.Errorf("import: %w", err)
	}
	for _, b := range call.batches {
		if idx < len(b.lines) {
			t := client.TupleFromProto(b.req.Tuples[idx])
			// Drop the "tuples[N]" the server prefixed: the line says where.
			msg := cerr.Message
			if _, rest, ok := strings.Cut(msg, "]"); ok && strings.HasPrefix(msg, "tuples[") {
				msg = strings.TrimPrefix(strings.TrimPrefix(rest, ":"), ".")
				msg = strings.TrimSpace(msg)
			}
			return &tuples.LineError{Name: imp.name, Line: int(b.lines[idx]), Text: t.String(),
				Err: &client.Error{Code: cerr.Code, Reason: cerr.Reason, Message: msg, Metadata: cerr.Metadata}}
		}
		idx -= len(b.lines)
	}
	return fmt.Errorf("import: %w", err)
}

// failed reports an import that stopped on an error.
func (imp *importer) failed(err error) error {
	if imp.abandoned.Load() {
		err = errors.New("interrupted twice: the calls under way were abandoned, so the server may have committed more than the count below")
	} else if errors.Is(err, context.Canceled) {
		err = errors.New("interrupted")
	}
	fmt.Fprintf(imp.s.err, "relata: %s\n", err.Error())
	imp.printStopped()
	return silentExit(ExitError)
}

// printStopped says how far a stopped import got and how to resume it.
func (imp *importer) printStopped() {
	n, line := imp.committed.Load(), imp.committedLine.Load()
	msg := fmt.Sprintf("import stopped: %d tuples committed", n)
	if imp.abandoned.Load() {
		msg = fmt.Sprintf("import stopped: at least %d tuples committed", n)
	}
	if z := imp.zookie.Load().(string); z != "" {
		msg += " (written at " + z + ")"
	}
	if line > 0 {
		msg += fmt.Sprintf("; every line up to %d is committed, resume with --resume-from %d", line, line+1)
	}
	fmt.Fprintln(imp.s.err, msg)
}

// summary prints the outcome of an import that read its whole input (or stopped at
// a bad line).
func (imp *importer) summary(elapsed time.Duration) error {
	for _, lerr := range imp.bad {
		fmt.Fprintln(imp.s.err, lerr.Error())
	}
	if more := imp.badCount - len(imp.bad); more > 0 {
		fmt.Fprintf(imp.s.err, "... and %d more bad lines\n", more)
	}
	if imp.stopErr != nil {
		fmt.Fprintf(imp.s.err, "relata: %s\n", imp.stopErr.Error())
		fmt.Fprintf(imp.s.err, "import stopped at line %d: %d tuples committed before it", imp.stopErr.Line, imp.committed.Load())
		if z := imp.zookie.Load().(string); z != "" {
			fmt.Fprintf(imp.s.err, " (written at %s)", z)
		}
		fmt.Fprintf(imp.s.err, "; fix line %d and resume with --resume-from %d, or re-run with --skip-invalid to import the good lines and list the bad ones\n",
			imp.stopErr.Line, imp.stopErr.Line)
		return silentExit(ExitError)
	}
	secs := elapsed.Seconds()
	if imp.flags.dryRun {
		n := imp.parsed.Load()
		if imp.json {
			_ = printJSONMap(imp.s.out, map[string]any{"dryRun": true, "valid": n, "invalid": imp.badCount, "lines": imp.lastLine})
		} else {
			fmt.Fprintf(imp.s.out, "dry run: %d valid tuples, %d bad lines, %d lines read\n", n, imp.badCount, imp.lastLine)
		}
		if imp.badCount > 0 {
			return silentExit(ExitError)
		}
		return nil
	}
	n := imp.committed.Load()
	rate := float64(n) / max(secs, 1e-9)
	zookie := imp.zookie.Load().(string)
	if imp.json {
		return printJSONMap(imp.s.out, map[string]any{"imported": n, "seconds": secs, "rate": int64(rate),
			"writtenAt": zookie, "lastLine": imp.lastLine, "skipped": imp.badCount})
	}
	if zookie == "" {
		if imp.flags.resumeFrom > imp.lastLine {
			fmt.Fprintf(imp.s.out, "nothing to import: the input has %d lines, --resume-from %d is past its end\n", imp.lastLine, imp.flags.resumeFrom)
		} else {
			fmt.Fprintf(imp.s.out, "nothing to import: no tuple in the %d lines read\n", imp.lastLine)
		}
		return nil
	}
	fmt.Fprintf(imp.s.out, "imported %d tuples in %.2f s (%.0f tuples/s) through line %d, written at %s\n", n, secs, rate, imp.lastLine, zookie)
	if imp.badCount > 0 {
		fmt.Fprintf(imp.s.out, "skipped %d bad lines\n", imp.badCount)
	}
	return nil
}

// startProgress starts the progress reporter and returns the function that stops it.
func (imp *importer) startProgress(start time.Time) func() {
	mode := imp.flags.progress
	if mode == "auto" {
		mode = "lines"
		if f, ok := imp.s.out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			mode = "bar"
		}
	}
	switch mode {
	case "bar":
		return imp.progressBar(start)
	case "lines":
		return imp.progressLines(start)
	}
	return func() {}
}

// progressLine describes the progress so far in one line.
func (imp *importer) progressLine(start time.Time) string {
	n := imp.committed.Load()
	secs := time.Since(start).Seconds()
	verb := "committed"
	if imp.flags.dryRun {
		n, verb = imp.parsed.Load(), "checked"
	}
	msg := fmt.Sprintf("%d tuples %s, %.0f tuples/s", n, verb, float64(n)/max(secs, 1e-9))
	if !imp.flags.dryRun {
		msg += fmt.Sprintf(", committed through line %d", imp.committedLine.Load())
	}
	if imp.size > 0 {
		msg += fmt.Sprintf(", %.0f%% read", 100*float64(imp.offset.Load())/float64(imp.size))
	}
	return msg
}

func (imp *importer) progressLines(start time.Time) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(imp.flags.interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fmt.Fprintln(imp.s.out, "import:", imp.progressLine(start))
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

func (imp *importer) progressBar(start time.Time) func() {
	p := mpb.New(mpb.WithOutput(imp.s.out), mpb.WithWidth(40), mpb.WithRefreshRate(200*time.Millisecond))
	counts := decor.Any(func(decor.Statistics) string { return imp.progressLine(start) })
	var bar *mpb.Bar
	if imp.size > 0 {
		bar = p.AddBar(imp.size, mpb.AppendDecorators(counts, decor.Name(" ETA "), decor.AverageETA(decor.ET_STYLE_GO)))
	} else {
		bar = p.AddSpinner(0, mpb.AppendDecorators(counts))
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				bar.SetCurrent(imp.offset.Load())
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		switch n := imp.offset.Load(); {
		case imp.size > 0 && n >= imp.size:
			bar.SetCurrent(imp.size) // completes the bar
		case imp.size == 0 && n > 0:
			bar.SetTotal(-1, true) // completes the spinner at what was read
		default:
			bar.Abort(false) // stopped early: keep the bar as it is
		}
		p.Wait()
	}
}

// exportFlags are the flags of `relata export`.
type exportFlags struct {
	format  string
	at      string
	cursor  string
	subject string
}

func newExportCmd(s *streams) *cobra.Command {
	fl := &exportFlags{}
	cmd, cf := clientCommand("export [TYPE[:ID][#RELATION]]", "Print every tuple at one revision (importable)",
		cobra.MaximumNArgs(1))
	cmd.Long = `Print every tuple live at one revision, one a line, in the text form that
relata import reads (or with --json one proto Tuple JSON object a line, which
relata import --format json reads), so
"relata export | relata import" copies a store. An optional filter restricts the
tuples as for relata read. The zookie of the revision exported, and on failure the
cursor to resume with (--cursor), go to standard error.`
	f := cmd.Flags()
	f.StringVar(&fl.at, "at", "", "export the revision of this zookie (default: the newest)")
	f.StringVar(&fl.cursor, "cursor", "", "resume an export from the cursor it printed")
	f.StringVar(&fl.subject, "subject", "", "only tuples whose subject matches TYPE[:ID][#RELATION]")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		fl.format = "text"
		if cf.json {
			fl.format = "json"
		}
		req := &relatav1.ExportRequest{At: fl.at, Cursor: fl.cursor}
		if len(args) == 1 || fl.subject != "" {
			req.Filter = &relatav1.TupleFilter{}
			if len(args) == 1 {
				req.Filter.ObjectType, req.Filter.ObjectId, req.Filter.Relation = splitFilter(args[0])
			}
			if fl.subject != "" {
				typ, id, rel := splitFilter(fl.subject)
				req.Filter.Subject = &relatav1.SubjectFilter{Type: typ, Id: id, Relation: rel}
			}
		}
		c, err := cf.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		return runExport(cmd.Context(), c, req, fl.format, s)
	}
	return cmd
}

// runExport streams an export to s.out; see newExportCmd.
func runExport(ctx context.Context, c *client.Client, req *relatav1.ExportRequest, format string, s *streams) error {
	w := bufio.NewWriterSize(s.out, 256<<10)
	var (
		n              int64
		zookie, cursor string
	)
	fail := func(err error) error {
		_ = w.Flush()
		if cursor != "" {
			fmt.Fprintf(s.err, "export: %d tuples printed; resume with --cursor %s\n", n, cursor)
		}
		return oneLine(fmt.Errorf("export: %w", client.FromStatus(err)))
	}
	stream, err := c.Relationships().Export(ctx, req)
	if err != nil {
		return fail(err)
	}
	var buf []byte
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(err)
		}
		zookie = resp.GetExportedAt()
		for _, t := range resp.GetTuples() {
			if format == "json" {
				b, err := protojson.Marshal(t)
				if err != nil {
					return fail(err)
				}
				buf = compactJSON(buf[:0], b)
			} else {
				buf = appendTupleText(buf[:0], t)
			}
			buf = append(buf, '\n')
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("export: %w", err)
			}
		}
		n += int64(len(resp.GetTuples()))
		if resp.GetCursor() != "" {
			cursor = resp.GetCursor()
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(s.err, "exported %d tuples at %s\n", n, zookie)
	return nil
}

// appendTupleText appends the text form of a proto tuple.
func appendTupleText(b []byte, t *relatav1.Tuple) []byte {
	b = append(b, t.GetObject().GetType()...)
	b = append(b, ':')
	b = append(b, t.GetObject().GetId()...)
	b = append(b, '#')
	b = append(b, t.GetRelation()...)
	b = append(b, '@')
	b = append(b, t.GetSubject().GetObject().GetType()...)
	b = append(b, ':')
	b = append(b, t.GetSubject().GetObject().GetId()...)
	if r := t.GetSubject().GetRelation(); r != "" && r != tuples.Ellipsis {
		b = append(b, '#')
		b = append(b, r...)
	}
	return b
}

// compactJSON appends src without the white space protojson may add.
func compactJSON(dst, src []byte) []byte {
	inString := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case inString:
			if c == '\\' && i+1 < len(src) {
				dst = append(dst, c, src[i+1])
				i++
				continue
			}
			if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\n' || c == '\t' || c == '\r':
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// watchFlags are the flags of `relata watch`.
type watchFlags struct {
	from  string
	retry time.Duration
}

func newWatchCmd(s *streams) *cobra.Command {
	fl := &watchFlags{}
	cmd, cf := clientCommand("watch [TYPE...]", "Print every change to the tuples as it commits",
		cobra.ArbitraryArgs)
	cmd.Long = `Print every change to the tuples (of the object types given, or all), one a line:
the revision's zookie, TOUCH or DELETE, and the tuple, in commit order. With --from
ZOOKIE it starts after that revision (which must be inside the server's GC window),
else at the newest. If the server goes away, watch reconnects and resumes exactly
where it stopped; on exit it prints the zookie to resume from (--from) to standard
error.`
	cmd.Flags().StringVar(&fl.from, "from", "", "start after the revision of this zookie (default: now)")
	cmd.Flags().DurationVar(&fl.retry, "retry", time.Minute, "how long to keep reconnecting to an unavailable server (0: give up at once)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := cf.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		w := bufio.NewWriter(s.out)
		through := fl.from
		err = watchChanges(cmd.Context(), c, fl.from, args, fl.retry, func(resp *relatav1.WatchResponse) error {
			for _, ch := range resp.GetChanges() {
				if cf.json {
					if err := printJSON(w, ch); err != nil {
						return err
					}
					continue
				}
				op := strings.TrimPrefix(ch.GetOperation().String(), "OPERATION_")
				fmt.Fprintf(w, "%s %s %s\n", ch.GetRevision(), op, client.TupleFromProto(ch.GetTuple()))
			}
			through = resp.GetChangesThrough()
			return w.Flush()
		})
		_ = w.Flush()
		// No resume hint when the server refused the --from it was given (bad or
		// expired zookie): resuming from it would fail the same way.
		var cerr *client.Error
		refused := errors.As(err, &cerr) && cerr.Code != codes.Unavailable && through == fl.from
		if through != "" && !refused {
			fmt.Fprintf(s.err, "watch: resume with --from %s\n", through)
		}
		if err == nil || errors.Is(err, context.Canceled) {
			return nil
		}
		return oneLine(err)
	}
	return cmd
}

// watchChanges runs a Watch from `from` and calls fn with every response, in order,
// with the client's Watch: when the server becomes unavailable (restarts, shuts down)
// it reconnects from the last changes_through, so fn sees every change exactly once,
// retrying for up to retry without progress (0: not at all). It returns when ctx ends
// or on any other error.
func watchChanges(ctx context.Context, c *client.Client, from string, types []string, retry time.Duration, fn func(*relatav1.WatchResponse) error) error {
	reconnect := retry
	if reconnect <= 0 {
		reconnect = -1
	}
	_, err := c.Watch(ctx, client.WatchOptions{ObjectTypes: types, From: from, Reconnect: reconnect}, func(b client.WatchBatch) error {
		return fn(b.Proto)
	})
	return err
}
