package cli

import (
	"flag"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// update is the golden-file flag every package's tests share: -update rewrites the
// expected output under testdata/ (here, datadriven's files, as its -rewrite does).
var update = flag.Bool("update", false, "rewrite the expected output in testdata/")

// runDataDriven is datadriven.RunTest, rewriting the file under -update.
func runDataDriven(t *testing.T, path string, f func(*testing.T, *datadriven.TestData) string) {
	t.Helper()
	if *update {
		if err := flag.Set("rewrite", "true"); err != nil {
			t.Fatal(err)
		}
	}
	datadriven.RunTest(t, path, f)
}
