package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/grpc/codes"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

// adminService implements relatav1.AdminServiceServer: backups.
type adminService struct {
	relatav1.UnimplementedAdminServiceServer
	s *Server
}

// Backup writes a consistent online snapshot of the store to a new directory on the
// server's host (tuples.Checkpointer). A store without snapshots answers
// UNIMPLEMENTED; a directory that exists, INVALID_ARGUMENT.
func (h *adminService) Backup(ctx context.Context, req *relatav1.BackupRequest) (*relatav1.BackupResponse, error) {
	if req.GetDir() == "" {
		return nil, toStatus(ctx, h.s.log, required("dir"))
	}
	cp, ok := h.s.cfg.Store.(tuples.Checkpointer)
	if !ok {
		return nil, newStatus(codes.Unimplemented, relatav1.ErrorReason_NOT_SUPPORTED,
			"backups are not supported by this datastore: use `relata export` (a logical backup)", nil)
	}
	dir, err := filepath.Abs(req.GetDir())
	if err != nil {
		return nil, newStatus(codes.InvalidArgument, relatav1.ErrorReason_INVALID_REQUEST, fmt.Sprintf("dir: %v", err), map[string]string{"field": "dir"})
	}
	if _, err := os.Stat(dir); err == nil {
		return nil, newStatus(codes.InvalidArgument, relatav1.ErrorReason_INVALID_REQUEST,
			fmt.Sprintf("dir: %s already exists: a backup goes to a new directory", dir), map[string]string{"field": "dir"})
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, newStatus(codes.InvalidArgument, relatav1.ErrorReason_INVALID_REQUEST, fmt.Sprintf("dir: %v", err), map[string]string{"field": "dir"})
	}
	rev, err := cp.Checkpoint(ctx, dir)
	if err != nil {
		if ctx.Err() != nil {
			return nil, toStatus(ctx, h.s.log, err)
		}
		h.s.log.ErrorContext(ctx, "relata: backup failed", "dir", dir, "err", err)
		return nil, newStatus(codes.Unavailable, relatav1.ErrorReason_STORAGE_ERROR, "backup failed: "+err.Error(), nil)
	}
	h.s.log.InfoContext(ctx, "relata: backup written", "dir", dir, "revision", uint64(rev))
	return &relatav1.BackupResponse{Dir: dir, BackedUpAt: h.s.Zookie(rev), Revision: uint64(rev)}, nil
}
