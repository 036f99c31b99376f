package tuples

// Limits of one write, defined here once for every layer: the API refuses a request
// over them (INVALID_ARGUMENT, reason LIMIT_EXCEEDED), the write path checks them for
// in-process callers, and stores enforce them by default.
const (
	// MaxUpdatesPerWrite bounds the updates of one WriteRequest.
	MaxUpdatesPerWrite = 1000
	// MaxPreconditions bounds the preconditions of one write or delete.
	MaxPreconditions = 100
)
