// Package layering holds the test that keeps Relata's imports pointing one way, down:
// cmd → server → check → schema → tuples. It has no code of its own; see
// layering_test.go for the allowed arrows.
package layering
