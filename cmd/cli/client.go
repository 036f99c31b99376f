package cli

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"google.golang.org/protobuf/types/known/structpb"
	"io"
	"net"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/relata/relata/client"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/server"
	"github.com/relata/relata/tuples"
)

// clientFlags are the flags every client command has; each is also RELATA_<NAME>.
type clientFlags struct {
	endpoint    string
	insecure    bool
	caFile      string
	token       string
	json        bool
	consistency string // --consistency, on the commands that read (addConsistency)
}

// addConsistency adds --consistency to a command that reads.
func (f *clientFlags) addConsistency(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.consistency, "consistency", "min", "full, min, exact:ZOOKIE, or a ZOOKIE to read at least as fresh as")
}

func (f *clientFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.endpoint, "endpoint", "localhost:50051", "gRPC address of the Relata server")
	fl.BoolVar(&f.insecure, "insecure", false, "plaintext instead of TLS (the default for localhost and loopback endpoints without --ca-file)")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM `FILE` of the CA that signed the server's certificate: TLS with it (also to loopback endpoints); without it TLS trusts the system roots")
	fl.StringVar(&f.token, "token", "", "bearer token (the server's --preshared-key)")
	fl.BoolVar(&f.json, "json", false, "print JSON for machines instead of text")
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) }
}

// dial connects to the endpoint: TLS with --ca-file's CA when given; otherwise
// loopback endpoints use plaintext, and others TLS (system roots) unless --insecure.
func (f *clientFlags) dial() (*client.Client, error) {
	opts := []client.Option{}
	switch {
	case f.caFile != "" && f.insecure:
		return nil, usageError("--ca-file and --insecure exclude each other: --insecure is plaintext")
	case f.caFile != "":
		pool, err := server.LoadCertPool(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		opts = append(opts, client.WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	case f.insecure || isLoopback(f.endpoint):
		opts = append(opts, client.WithInsecure())
	}
	if f.token != "" {
		opts = append(opts, client.WithToken(f.token))
	}
	return client.New(f.endpoint, opts...)
}

func isLoopback(endpoint string) bool {
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		host = endpoint
	}
	if host == "localhost" || host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// clientCommand builds a client command with its flags bound to a fresh clientFlags;
// the caller sets RunE.
func clientCommand(use, short string, args cobra.PositionalArgs) (*cobra.Command, *clientFlags) {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
	}
	f.register(cmd)
	return cmd, f
}

// oneLine keeps an error to one line (schema errors list one per line).
func oneLine(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	var ce *client.Error
	if errors.As(err, &ce) && err == error(ce) {
		if !strings.Contains(ce.Message, "\n") {
			return err
		}
		one := *ce
		one.Message = joinLines(ce.Message)
		return &one
	}
	msg := err.Error()
	if !strings.Contains(msg, "\n") {
		return err
	}
	return errors.New(joinLines(msg))
}

// joinLines joins the lines of msg with " ; ".
func joinLines(msg string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", " ; ")), " ")
}

// printJSONMap prints m as one line of JSON.
func printJSONMap(w io.Writer, m map[string]any) error {
	return json.NewEncoder(w).Encode(m)
}

// pagedStream is the response of a stream that pages with a cursor.
type pagedStream interface {
	proto.Message
	GetCursor() string
}

// printStream prints every message of a server stream until it ends: as JSON with
// --json (the commands then ask for one result a message, so that each line carries
// its own cursor), else as the lines texts makes of it (the commands ask for batched
// results, many a message). A stream error is printed as one line. When --limit filled the page, the text form ends with
// one line on standard error giving the cursor of the next page.
func printStream[T pagedStream](s *streams, f *clientFlags, p *paging, recv func() (T, error), texts func(T) []string) error {
	var n uint32
	var cursor string
	for {
		resp, err := recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return oneLine(client.FromStatus(err))
		}
		cursor = resp.GetCursor()
		if f.json {
			n++
			if err := printJSON(s.out, resp); err != nil {
				return err
			}
			continue
		}
		lines := texts(resp)
		n += uint32(len(lines))
		for _, l := range lines {
			fmt.Fprintln(s.out, l)
		}
	}
	if !f.json && p.limit > 0 && n == p.limit && cursor != "" {
		fmt.Fprintf(s.err, "next page: --cursor %s\n", cursor)
	}
	return nil
}

// paging holds --cursor and --limit of read and the lookups.
type paging struct {
	cursor string
	limit  uint32
}

// add registers --cursor and --limit on cmd and says in its help where the next
// cursor is printed.
func (p *paging) add(cmd *cobra.Command, what string) {
	cmd.Flags().StringVar(&p.cursor, "cursor", "", "resume after the page that printed this cursor")
	cmd.Flags().Uint32Var(&p.limit, "limit", 0, "stop after this many "+what+" (0: all)")
	cmd.Long += "\n\nPaging: with --limit N a full page ends with one line on standard error,\n" +
		"'next page: --cursor CURSOR'; pass that --cursor (with the same arguments) for the next\n" +
		"page. With --json every line carries its own \"cursor\"."
}

// printJSON prints m as one line of JSON, as the REST API prints it (server.MarshalJSON).
func printJSON(w io.Writer, m proto.Message) error {
	b, err := server.MarshalJSON(m)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func parseConsistency(s string) (client.Consistency, error) {
	c, err := client.ParseConsistency(s)
	if err != nil {
		// A zookie that fails its integrity check is bad data (INVALID_ARGUMENT, exit 1),
		// as the server would answer, not a mistake in the command line.
		return client.Consistency{}, &client.Error{Code: codes.InvalidArgument, Reason: "INVALID_ZOOKIE",
			Message: fmt.Sprintf("--consistency %q: want full, min, exact:ZOOKIE or a ZOOKIE (%v)", s, errors.Unwrap(err))}
	}
	return c, nil
}

// addClientCommands registers the commands that talk to a server: check, check-bulk,
// expand, lookup-resources, lookup-subjects, write, create, delete, read.
func addClientCommands(root *cobra.Command, s *streams) {
	root.AddCommand(
		newCheckCmd(s), newCheckBulkCmd(s), newExpandCmd(s),
		newLookupResourcesCmd(s), newLookupSubjectsCmd(s),
		newWriteCmd(s, "write", tuples.OpTouch, "Write tuples (touch: create or keep)"),
		newWriteCmd(s, "create", tuples.OpCreate, "Create tuples (fail if one exists)"),
		newWriteCmd(s, "delete", tuples.OpDelete, "Delete tuples"),
		newReadCmd(s),
	)
}

func newCheckCmd(s *streams) *cobra.Command {
	var explain bool
	var contextJSON string
	cmd, f := clientCommand("check OBJECT PERMISSION SUBJECT", "Check a permission: exit 0 allowed, 3 denied, 4 conditional",
		cobra.ExactArgs(3))
	cmd.Long = "Check whether SUBJECT has PERMISSION on OBJECT, e.g.\n" +
		"  relata check flow:f1 execute user:anne\n" +
		"  relata check flow:f1 run user:anne --context '{\"ip\":\"10.0.0.1\"}'\n" +
		"Prints allowed, denied or conditional (missing: a, b) and exits 0 when allowed,\n" +
		"3 when denied, 4 when conditional (caveat parameters missing), 1 on errors."
	cmd.Flags().BoolVar(&explain, "explain", false, "print why: the evaluation tree")
	cmd.Flags().StringVar(&contextJSON, "context", "", "caveat context, a JSON object: '{\"ip\":\"10.0.0.1\"}'")
	f.addConsistency(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cons, err := parseConsistency(f.consistency)
		if err != nil {
			return err
		}
		c, err := f.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		obj, err := tuples.ParseObject(args[0])
		if err != nil {
			return err
		}
		sub, err := tuples.ParseSubject(args[2])
		if err != nil {
			return err
		}
		var reqCtx *structpb.Struct
		if contextJSON != "" {
			var m map[string]any
			if err := json.Unmarshal([]byte(contextJSON), &m); err != nil || m == nil {
				return fmt.Errorf("--context: want a JSON object such as '{\"ip\":\"10.0.0.1\"}', got %q", contextJSON)
			}
			if reqCtx, err = structpb.NewStruct(m); err != nil {
				return fmt.Errorf("--context: %w", err)
			}
		}
		resp, err := c.Permissions().Check(cmd.Context(), &relatav1.CheckRequest{
			Object: client.ObjectProto(obj), Permission: args[1], Subject: client.SubjectProto(sub),
			Consistency: cons.Proto(), Explain: explain, Context: reqCtx,
		})
		if err != nil {
			return oneLine(client.FromStatus(err))
		}
		if f.json {
			err = printJSON(s.out, resp)
		} else {
			word := "denied"
			switch {
			case resp.GetConditional():
				word = "conditional (missing: " + strings.Join(resp.GetMissingContext(), ", ") + ")"
			case resp.GetAllowed():
				word = "allowed"
			}
			fmt.Fprintln(s.out, word)
			if explain {
				printExplanation(s.out, resp.GetExplanation(), "")
			}
		}
		if err != nil {
			return err
		}
		if resp.GetConditional() {
			return silentExit(ExitConditional)
		}
		if !resp.GetAllowed() {
			return silentExit(ExitDenied)
		}
		return nil
	}
	return cmd
}

// printExplanation prints an explanation tree, one step a line, [+] true, [-] false.
func printExplanation(w io.Writer, e *relatav1.Explanation, indent string) {
	if e == nil {
		return
	}
	mark := "[-]"
	if e.GetResult() {
		mark = "[+]"
	}
	line := indent + mark + " " + e.GetStep()
	if e.GetNote() != "" {
		line += "  (" + e.GetNote() + ")"
	}
	fmt.Fprintln(w, line)
	for _, c := range e.GetChildren() {
		printExplanation(w, c, indent+"    ")
	}
}

func newCheckBulkCmd(s *streams) *cobra.Command {
	cmd, f := clientCommand("check-bulk OBJECT#PERMISSION@SUBJECT...", "Check several permissions at one revision",
		cobra.MinimumNArgs(1))
	cmd.Long = "Check several permissions at one revision, each written like a tuple:\n" +
		"  relata check-bulk flow:f1#execute@user:anne flow:f2#execute@user:bob\n" +
		"Prints one line per check. Exits 0 when all are allowed, 3 when any is denied, 1 on errors."
	f.addConsistency(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cons, err := parseConsistency(f.consistency)
		if err != nil {
			return err
		}
		items := make([]client.BulkItem, len(args))
		for i, a := range args {
			if items[i], err = client.ParseBulkItem(a); err != nil {
				return err
			}
		}
		c, err := f.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		zookie, err := c.CheckBulk(cmd.Context(), items, cons)
		if err != nil {
			return oneLine(err)
		}
		code := ExitOK
		for i, it := range items {
			word := "allowed"
			switch {
			case it.Err != nil:
				word, code = "error", ExitError
			case !it.Allowed:
				word = "denied"
				if code == ExitOK {
					code = ExitDenied
				}
			}
			if f.json {
				m := map[string]any{"check": args[i], "allowed": it.Allowed, "checkedAt": zookie}
				if it.Err != nil {
					m["error"] = it.Err.Error()
				}
				if err := printJSONMap(s.out, m); err != nil {
					return err
				}
				continue
			}
			line := word + " " + args[i]
			if it.Err != nil {
				line += ": " + it.Err.Error()
			}
			fmt.Fprintln(s.out, line)
		}
		if code != ExitOK {
			return silentExit(code)
		}
		return nil
	}
	return cmd
}

func newExpandCmd(s *streams) *cobra.Command {
	cmd, f := clientCommand("expand OBJECT RELATION | OBJECT#RELATION", "Print the userset tree of RELATION (a relation or permission) on OBJECT",
		cobra.RangeArgs(1, 2))
	cmd.Long = "Print the userset tree of RELATION (a relation or permission) on OBJECT, one node\n" +
		"a line, e.g.\n  relata expand flow:f1 execute\n  relata expand flow:f1#execute"
	f.addConsistency(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cons, err := parseConsistency(f.consistency)
		if err != nil {
			return err
		}
		object, relation := args[0], ""
		if len(args) == 2 {
			relation = args[1]
		} else if o, r, ok := strings.Cut(args[0], "#"); ok {
			object, relation = o, r
		} else {
			return usageError("expand: want OBJECT RELATION or OBJECT#RELATION, got %q (usage: relata expand OBJECT RELATION | OBJECT#RELATION)", args[0])
		}
		obj, err := tuples.ParseObject(object)
		if err != nil {
			return err
		}
		c, err := f.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		resp, err := c.Permissions().Expand(cmd.Context(), &relatav1.ExpandRequest{
			Object: client.ObjectProto(obj), Relation: relation, Consistency: cons.Proto(),
		})
		if err != nil {
			return oneLine(client.FromStatus(err))
		}
		if f.json {
			return printJSON(s.out, resp)
		}
		printTree(s.out, resp.GetTree(), "")
		return nil
	}
	return cmd
}

// printTree prints an Expand tree, one node a line, leaves listing their subjects.
func printTree(w io.Writer, t *relatav1.ExpandTree, indent string) {
	if t == nil {
		return
	}
	var kind string
	switch t.GetKind() {
	case relatav1.ExpandTree_KIND_LEAF:
		kind = "leaf"
	case relatav1.ExpandTree_KIND_UNION:
		kind = "union"
	case relatav1.ExpandTree_KIND_INTERSECTION:
		kind = "intersection"
	case relatav1.ExpandTree_KIND_EXCLUSION:
		kind = "exclusion"
	default:
		kind = "?"
	}
	head := kind
	if t.GetObject() != nil && t.GetRelation() != "" {
		head = client.ObjectFromProto(t.GetObject()).String() + "#" + t.GetRelation() + " " + head
	}
	if d := t.GetDescription(); d != "" && d != kind {
		head += "  (" + d + ")"
	}
	fmt.Fprintln(w, indent+head)
	for _, sub := range t.GetSubjects() {
		fmt.Fprintln(w, indent+"    "+client.SubjectFromProto(sub).String())
	}
	for _, c := range t.GetChildren() {
		printTree(w, c, indent+"    ")
	}
}

func newLookupResourcesCmd(s *streams) *cobra.Command {
	var pg paging
	cmd, f := clientCommand("lookup-resources TYPE PERMISSION SUBJECT", "List the objects of TYPE on which SUBJECT has PERMISSION",
		cobra.ExactArgs(3))
	cmd.Long = "List the objects of TYPE on which SUBJECT has PERMISSION, one a line, e.g.\n" +
		"  relata lookup-resources flow execute user:anne"
	f.addConsistency(cmd)
	pg.add(cmd, "results")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cons, err := parseConsistency(f.consistency)
		if err != nil {
			return err
		}
		sub, err := tuples.ParseSubject(args[2])
		if err != nil {
			return err
		}
		c, err := f.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		stream, err := c.Permissions().LookupResources(cmd.Context(), &relatav1.LookupResourcesRequest{
			ResourceType: args[0], Permission: args[1], Subject: client.SubjectProto(sub),
			Consistency: cons.Proto(), Cursor: pg.cursor, Limit: pg.limit, BatchResults: !f.json,
		})
		if err != nil {
			return oneLine(client.FromStatus(err))
		}
		return printStream(s, f, &pg, stream.Recv, func(resp *relatav1.LookupResourcesResponse) []string {
			lines := make([]string, len(resp.GetResults()))
			for i, r := range resp.GetResults() {
				lines[i] = client.ObjectFromProto(r.GetObject()).String()
			}
			return lines
		})
	}
	return cmd
}

func newLookupSubjectsCmd(s *streams) *cobra.Command {
	var subjectRelation string
	var pg paging
	cmd, f := clientCommand("lookup-subjects OBJECT PERMISSION SUBJECT_TYPE[#RELATION]", "List the subjects of SUBJECT_TYPE that have PERMISSION on OBJECT",
		cobra.ExactArgs(3))
	cmd.Long = "List the subjects of SUBJECT_TYPE that have PERMISSION on OBJECT, one a line, e.g.\n" +
		"  relata lookup-subjects flow:f1 execute user\n  relata lookup-subjects flow:f1 execute role#member"
	f.addConsistency(cmd)
	cmd.Flags().StringVar(&subjectRelation, "subject-relation", "", "look up usersets SUBJECT_TYPE:id#RELATION")
	pg.add(cmd, "results")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cons, err := parseConsistency(f.consistency)
		if err != nil {
			return err
		}
		obj, err := tuples.ParseObject(args[0])
		if err != nil {
			return err
		}
		subjectType := args[2]
		if typ, rel, ok := strings.Cut(subjectType, "#"); ok {
			// role#member is SUBJECT_TYPE role with --subject-relation member.
			if subjectRelation != "" && subjectRelation != rel {
				return usageError("SUBJECT_TYPE %q and --subject-relation %q disagree", subjectType, subjectRelation)
			}
			subjectType, subjectRelation = typ, rel
		}
		c, err := f.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		stream, err := c.Permissions().LookupSubjects(cmd.Context(), &relatav1.LookupSubjectsRequest{
			Object: client.ObjectProto(obj), Permission: args[1], SubjectType: subjectType,
			SubjectRelation: subjectRelation, Consistency: cons.Proto(), Cursor: pg.cursor, Limit: pg.limit,
			BatchResults: !f.json,
		})
		if err != nil {
			return oneLine(client.FromStatus(err))
		}
		return printStream(s, f, &pg, stream.Recv, func(resp *relatav1.LookupSubjectsResponse) []string {
			lines := make([]string, len(resp.GetResults()))
			for i, r := range resp.GetResults() {
				lines[i] = client.FormatLookupSubjectResult(r)
			}
			return lines
		})
	}
	return cmd
}

func newWriteCmd(s *streams, use string, op tuples.Operation, short string) *cobra.Command {
	var require, forbid []string
	var filter, subject string
	args := cobra.MinimumNArgs(1)
	usage := use + " TUPLE..."
	if op == tuples.OpDelete {
		usage = use + " TUPLE... | --filter FILTER [--subject SUBJECT]"
		args = func(c *cobra.Command, a []string) error {
			if (filter != "" || subject != "") && len(a) > 0 {
				return fmt.Errorf("--filter deletes what it selects and takes no TUPLE arguments, got %d", len(a))
			}
			if filter != "" || subject != "" {
				return nil
			}
			return cobra.MinimumNArgs(1)(c, a)
		}
	}
	cmd, f := clientCommand(usage, short, args)
	cmd.Long = short + ", atomically, e.g.\n  relata " + use + " flow:f1#granted@role:ops#member tenant:acme#admin@user:anne\n" +
		"Prints the zookie of the new revision (pass it to --consistency to read this write).\n\n" +
		"Preconditions make the write conditional, checked atomically with it: --require FILTER\n" +
		"needs a tuple matching FILTER, --forbid FILTER needs none (each may repeat). A FILTER\n" +
		"is TYPE[:ID][#RELATION][@SUBJECT_TYPE[:ID][#RELATION]], e.g.\n" +
		"  relata " + use + " flow:f1#user_granted@user:anne --forbid 'flow:f1#user_denied@user:anne'\n" +
		"A failed precondition writes nothing (exit 1, PRECONDITION_FAILED)."
	if op == tuples.OpDelete {
		cmd.Long += "\n\nWith --filter, delete every tuple the filter selects instead (one atomic delete;\n" +
			"prints the zookie and how many tuples it deleted), e.g.\n" +
			"  relata delete --filter 'flow:f1#user_granted' --subject user:anne"
		cmd.Flags().StringVar(&filter, "filter", "", "delete every tuple matching TYPE[:ID][#RELATION] (instead of TUPLE arguments)")
		cmd.Flags().StringVar(&subject, "subject", "", "with --filter: only tuples whose subject matches TYPE[:ID][#RELATION]")
	}
	cmd.Flags().StringArrayVar(&require, "require", nil, "precondition: a tuple matching FILTER must exist (repeatable)")
	cmd.Flags().StringArrayVar(&forbid, "forbid", nil, "precondition: no tuple matching FILTER may exist (repeatable)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var pre []client.Precondition
		for _, list := range []struct {
			filters   []string
			mustMatch bool
			flag      string
		}{{require, true, "--require"}, {forbid, false, "--forbid"}} {
			for _, fs := range list.filters {
				pf, err := client.ParseFilter(fs)
				if err != nil {
					return fmt.Errorf("%s: %w", list.flag, err)
				}
				pre = append(pre, client.Precondition{MustMatch: list.mustMatch, Filter: pf})
			}
		}
		if op == tuples.OpDelete && (filter != "" || subject != "") {
			if filter == "" {
				return usageError("delete: --subject needs --filter (see 'relata delete --help')")
			}
			tf, err := client.ParseFilter(filter)
			if err != nil {
				return fmt.Errorf("--filter: %w", err)
			}
			if tf.Subject != nil && subject != "" {
				return usageError("delete: give the subject in --filter (after @) or in --subject, not both")
			}
			if subject != "" {
				tf.Subject = client.ParseSubjectFilter(subject)
			}
			c, err := f.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			zookie, n, err := c.DeleteMatching(cmd.Context(), tf, pre)
			if err != nil {
				return oneLine(err)
			}
			if f.json {
				return printJSON(s.out, &relatav1.DeleteResponse{DeletedAt: zookie, Deleted: n})
			}
			fmt.Fprintln(s.out, zookie)
			fmt.Fprintf(s.err, "deleted %d %s\n", n, plural(int(n), "tuple", "tuples"))
			return nil
		}
		ups := make([]client.Update, 0, len(args))
		for _, a := range args {
			t, err := tuples.ParseTuple(a)
			if err != nil {
				return err
			}
			ups = append(ups, client.Update{Op: op, Tuple: t})
		}
		c, err := f.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		zookie, err := c.WriteIf(cmd.Context(), ups, pre)
		if err != nil {
			return oneLine(err)
		}
		if f.json {
			return printJSON(s.out, &relatav1.WriteResponse{WrittenAt: zookie})
		}
		fmt.Fprintln(s.out, zookie)
		return nil
	}
	return cmd
}

func newReadCmd(s *streams) *cobra.Command {
	var subject string
	var pg paging
	cmd, f := clientCommand("read [TYPE[:ID][#RELATION]]", "Print the tuples matching a filter, one a line",
		cobra.MaximumNArgs(1))
	cmd.Long = "Print the stored tuples matching a filter, one a line in text form, e.g.\n" +
		"  relata read flow:f1\n  relata read tenant#admin --subject user:anne\n  relata read"
	f.addConsistency(cmd)
	cmd.Flags().StringVar(&subject, "subject", "", "only tuples whose subject matches TYPE[:ID][#RELATION]")
	pg.add(cmd, "tuples")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cons, err := parseConsistency(f.consistency)
		if err != nil {
			return err
		}
		filter := &relatav1.TupleFilter{}
		if len(args) == 1 {
			filter.ObjectType, filter.ObjectId, filter.Relation = splitFilter(args[0])
		}
		if subject != "" {
			typ, id, rel := splitFilter(subject)
			filter.Subject = &relatav1.SubjectFilter{Type: typ, Id: id, Relation: rel}
		}
		c, err := f.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		stream, err := c.Relationships().Read(cmd.Context(), &relatav1.ReadRequest{Filter: filter, Consistency: cons.Proto(), Cursor: pg.cursor, Limit: pg.limit,
			BatchResults: !f.json})
		if err != nil {
			return oneLine(client.FromStatus(err))
		}
		return printStream(s, f, &pg, stream.Recv, func(resp *relatav1.ReadResponse) []string {
			lines := make([]string, len(resp.GetResults()))
			for i, r := range resp.GetResults() {
				lines[i] = client.TupleFromProto(r.GetTuple()).String()
			}
			return lines
		})
	}
	return cmd
}

// splitFilter splits `TYPE[:ID][#RELATION]`; the server validates the parts.
func splitFilter(s string) (typ, id, rel string) {
	rest, rel, _ := strings.Cut(s, "#")
	typ, id, _ = strings.Cut(rest, ":")
	return typ, id, rel
}

// plural picks one or many by n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
