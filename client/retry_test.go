package client

import (
	"testing"

	"github.com/stretchr/testify/require"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

func TestRetrySafe(t *testing.T) {
	write := func(pre bool, ops ...relatav1.Operation) *relatav1.WriteRequest {
		w := &relatav1.WriteRequest{}
		for _, op := range ops {
			w.Updates = append(w.Updates, &relatav1.TupleUpdate{Operation: op})
		}
		if pre {
			w.Preconditions = []*relatav1.Precondition{{}}
		}
		return w
	}
	for _, tc := range []struct {
		name   string
		method string
		req    any
		want   bool
	}{
		{"check", relatav1.PermissionService_Check_FullMethodName, &relatav1.CheckRequest{}, true},
		{"read schema", relatav1.SchemaService_ReadSchema_FullMethodName, &relatav1.ReadSchemaRequest{}, true},
		{"diff schema", relatav1.SchemaService_DiffSchema_FullMethodName, &relatav1.DiffSchemaRequest{}, true},
		{"schema revisions", relatav1.SchemaService_ListSchemaRevisions_FullMethodName, &relatav1.ListSchemaRevisionsRequest{}, true},
		{"backup", relatav1.AdminService_Backup_FullMethodName, &relatav1.BackupRequest{}, false},
		{"touch and delete", relatav1.RelationshipService_Write_FullMethodName, write(false, relatav1.Operation_OPERATION_TOUCH, relatav1.Operation_OPERATION_DELETE), true},
		{"create", relatav1.RelationshipService_Write_FullMethodName, write(false, relatav1.Operation_OPERATION_TOUCH, relatav1.Operation_OPERATION_CREATE), false},
		{"preconditions", relatav1.RelationshipService_Write_FullMethodName, write(true, relatav1.Operation_OPERATION_TOUCH), false},
		{"schema write", relatav1.SchemaService_WriteSchema_FullMethodName, &relatav1.WriteSchemaRequest{}, false},
		{"delete by filter", relatav1.RelationshipService_Delete_FullMethodName, &relatav1.DeleteRequest{}, false},
	} {
		require.Equal(t, tc.want, retrySafe(tc.method, tc.req), tc.name)
	}
}
