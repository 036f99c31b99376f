// Package conformance locates the peer conformance files (SpiceDB's consistency-test
// validation files, in a directory holding spicedb/*.yaml) for the tests that run them.
//
// The files are not part of the repository. Tests find them through
// $RELATA_CONFORMANCE_DIR, or else in ../shared/conformance beside the repository's
// root when that directory exists. When they are absent a test skips with one line
// saying how to run it, except under CI=true, where absence is a failure.
package conformance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// EnvVar names the environment variable that points at the conformance directory.
const EnvVar = "RELATA_CONFORMANCE_DIR"

// errAbsent is Lookup's answer when neither EnvVar nor the default directory exists.
var errAbsent = errors.New("conformance files not found")

// Lookup returns the conformance directory: $RELATA_CONFORMANCE_DIR when set (an error
// if it is not a directory), else ../shared/conformance beside the repository's root
// when it exists. When neither is there it returns an error for which IsAbsent holds.
func Lookup() (string, error) {
	if dir := os.Getenv(EnvVar); dir != "" {
		fi, err := os.Stat(dir)
		if err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvVar, dir, err)
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("%s=%s: not a directory", EnvVar, dir)
		}
		return dir, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "..", "shared", "conformance")
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return dir, nil
	}
	return "", errAbsent
}

// IsAbsent tells whether err is Lookup's answer when the files are simply not there.
func IsAbsent(err error) bool { return errors.Is(err, errAbsent) }

// Dir returns the conformance directory for tb. When the files are absent it skips tb
// with one line saying how to run it; under CI=true absence fails tb instead. A
// $RELATA_CONFORMANCE_DIR that names no directory always fails tb.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir, err := Lookup()
	switch {
	case err == nil:
		return dir
	case !IsAbsent(err):
		tb.Fatalf("conformance files: %v", err)
	case os.Getenv("CI") == "true":
		tb.Fatalf("conformance files not found and CI=true: set %s to the directory holding spicedb/*.yaml", EnvVar)
	default:
		tb.Skipf("conformance files not found: set %s to the directory holding spicedb/*.yaml to run this test", EnvVar)
	}
	return ""
}

// repoRoot is the nearest directory at or above the working directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errAbsent
		}
		dir = parent
	}
}
