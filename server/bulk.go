package server

import (
	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// Import is not built yet (the import issue's).
func (h *relationshipService) Import(stream relatav1.RelationshipService_ImportServer) error {
	return toStatus(stream.Context(), h.s.log, errNotSupported("Import"))
}

// Export is not built yet (the import issue's).
func (h *relationshipService) Export(_ *relatav1.ExportRequest, stream relatav1.RelationshipService_ExportServer) error {
	return toStatus(stream.Context(), h.s.log, errNotSupported("Export"))
}

// Watch is not built yet (the import issue's).
func (h *relationshipService) Watch(_ *relatav1.WatchRequest, stream relatav1.RelationshipService_WatchServer) error {
	return toStatus(stream.Context(), h.s.log, errNotSupported("Watch"))
}
