package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/relata/relata/schema/models"
	"github.com/stretchr/testify/require"
)

func TestSchemaModels(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		code    int
		wantOut []string
		wantErr string
	}{
		{
			name:    "lists every model, default marked",
			args:    []string{"schema", "models"},
			code:    ExitOK,
			wantOut: append(models.Names(), models.Default+" ", "(default)"),
		},
		{
			name:    "no arguments",
			args:    []string{"schema", "models", "extra"},
			code:    ExitUsage,
			wantErr: "unknown command",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(context.Background(), tt.args, strings.NewReader(""), &out, &errOut)
			require.Equal(t, tt.code, code, "stderr: %s", errOut.String())
			for _, w := range tt.wantOut {
				require.Contains(t, out.String(), w)
			}
			require.Contains(t, errOut.String(), tt.wantErr)
			if tt.code == ExitOK {
				require.Len(t, strings.Split(strings.TrimSpace(out.String()), "\n"), len(models.Names()))
			}
		})
	}
}
