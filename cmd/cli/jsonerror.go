package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	codepb "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"

	"github.com/relata/relata/client"
	"github.com/relata/relata/tuples"
)

// jsonError is what a command run with --json prints on standard error when it fails:
// {"error":{"code":"NOT_FOUND","reason":"UNKNOWN_TYPE","message":"…"}}. code is the
// gRPC code's canonical name, reason the server's machine-readable reason (empty when
// there is none), message the text without the reason.
type jsonError struct {
	Error jsonErrorBody `json:"error"`
}

type jsonErrorBody struct {
	Code    string `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// errorBody classifies err for --json. A server error keeps its code and reason; a
// malformed command line or argument is INVALID_ARGUMENT INVALID_REQUEST, as the server
// would answer it.
func errorBody(err error, exit int) jsonErrorBody {
	var ce *client.Error
	var ve *tuples.ValidationError
	switch {
	case errors.As(err, &ce):
		return jsonErrorBody{Code: codeName(ce.Code), Reason: ce.Reason, Message: ce.Message}
	case errors.Is(err, context.Canceled):
		return jsonErrorBody{Code: codeName(codes.Canceled), Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return jsonErrorBody{Code: codeName(codes.DeadlineExceeded), Message: err.Error()}
	case errors.As(err, &ve), exit == ExitUsage:
		return jsonErrorBody{Code: codeName(codes.InvalidArgument), Reason: "INVALID_REQUEST", Message: err.Error()}
	}
	return jsonErrorBody{Code: codeName(codes.Unknown), Message: err.Error()}
}

// codeName is the canonical name of a gRPC code: INVALID_ARGUMENT, NOT_FOUND, ….
func codeName(c codes.Code) string { return codepb.Code(c).String() }

// printJSONError prints err as one line of JSON.
func printJSONError(w io.Writer, err error, exit int) {
	body := errorBody(err, exit)
	_ = printJSONValue(w, jsonError{Error: body})
}

// printJSONValue prints v as one line of JSON.
func printJSONValue(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// wantsJSON tells whether the command asked for JSON: its --json flag (set on the
// command line or through RELATA_JSON), or, when the command line did not parse far
// enough to set it, a --json among the arguments.
func wantsJSON(cmd *cobra.Command, args []string) bool {
	if cmd != nil {
		if fl := cmd.Flags().Lookup("json"); fl != nil && fl.Changed {
			return fl.Value.String() == "true"
		}
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--json" {
			return true
		}
		if v, ok := strings.CutPrefix(a, "--json="); ok {
			b, err := strconv.ParseBool(v)
			return err == nil && b
		}
	}
	return false
}
