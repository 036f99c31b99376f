package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/relata/relata/client"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pebblestore"
)

// addBackupCommands registers `relata backup create DIR` and `relata backup verify DIR`.
func addBackupCommands(root *cobra.Command, s *streams) {
	backup := &cobra.Command{
		Use:   "backup",
		Short: "Online backups (consistent Pebble snapshots) and their verification",
		Long: `Online backups of a running server's Pebble store. "backup create DIR" asks the
server (AdminService.Backup, scope admin) to write a consistent snapshot to DIR on the
server's host while writes continue; "backup verify DIR" opens a backup read-only and
prints its revision and tuple count. Restore by serving it: relata serve --data-dir DIR.`,
	}
	create, f := clientCommand("create DIR", "Write a consistent snapshot of the server's store to DIR (on the server's host)", cobra.ExactArgs(1))
	create.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := f.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		resp, err := c.Admin().Backup(cmd.Context(), &relatav1.BackupRequest{Dir: args[0]})
		if err != nil {
			return oneLine(client.FromStatus(err))
		}
		if f.json {
			return printJSON(s.out, resp)
		}
		_, err = fmt.Fprintf(s.out, "backup of revision %d in %s\nzookie %s\n", resp.GetRevision(), resp.GetDir(), resp.GetBackedUpAt())
		return err
	}
	var verifyJSON bool
	verify := &cobra.Command{
		Use:   "verify DIR",
		Short: "Open a backup read-only and print its revision and tuple count",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rev, n, zookie, err := verifyBackup(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if verifyJSON {
				return printJSONMap(s.out, map[string]any{"dir": args[0], "revision": uint64(rev), "zookie": zookie, "tuples": n})
			}
			_, err = fmt.Fprintf(s.out, "revision %d\ntuples %d\nzookie %s\n", rev, n, zookie)
			return err
		},
	}
	verify.Flags().BoolVar(&verifyJSON, "json", false, "print JSON for machines instead of text")
	backup.AddCommand(create, verify)
	root.AddCommand(backup)
}

// verifyBackup opens the store in dir read-only and counts the tuples live at its head.
func verifyBackup(ctx context.Context, dir string) (tuples.Revision, int, string, error) {
	st, err := pebblestore.Open(dir, &pebblestore.Options{ReadOnly: true, GCInterval: -1})
	if err != nil {
		return 0, 0, "", fmt.Errorf("backup verify: %w", err)
	}
	defer st.Close()
	head, err := st.HeadRevision(ctx)
	if err != nil {
		return 0, 0, "", fmt.Errorf("backup verify: %w", err)
	}
	r, err := st.ReaderAt(ctx, head)
	if err != nil {
		return 0, 0, "", fmt.Errorf("backup verify: %w", err)
	}
	if _, _, err := r.Schema(ctx); err != nil && !errors.Is(err, tuples.ErrNoSchema) {
		return 0, 0, "", fmt.Errorf("backup verify: reading the schema: %w", err)
	}
	n := 0
	for _, err := range r.Read(ctx, tuples.Filter{}, nil) {
		if err != nil {
			return 0, 0, "", fmt.Errorf("backup verify: reading tuples: %w", err)
		}
		n++
	}
	return head, n, tuples.NewZookies(st.Identity()).Encode(head), nil
}
