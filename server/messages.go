package server

import "regexp"

// packagePrefix matches the package prefixes Go errors gather on their way up
// ("pebblestore: ", "check: "): names of the code's packages, which mean nothing to the
// user reading the message. "schema: " stays: it tells the user the schema refused.
// A prefix stands at the start of the message, after another ": " or after "(".
var packagePrefix = regexp.MustCompile(`(^|: |\()(?:tuples|check|pebblestore|pgstore|server|validation|client|cli|models): `)

// UserMessage is msg as users see it: without package prefixes. Every status error the
// server returns carries its message through UserMessage; the CLI passes its own errors
// through it too.
func UserMessage(msg string) string {
	for {
		out := packagePrefix.ReplaceAllString(msg, "$1")
		if out == msg {
			return out
		}
		msg = out
	}
}
