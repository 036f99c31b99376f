package server

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// Malformed protobuf. grpc-go answers a request message that does not unmarshal with
// INTERNAL, before any interceptor runs. The server's codec instead lets such a
// message through empty, carrying the unmarshal error in an unknown field of a
// reserved number; the innermost interceptors (after auth, so a caller without
// credentials learns nothing) turn it into INVALID_ARGUMENT with reason
// INVALID_REQUEST naming the cause, for unary calls and every message of a stream.

// badMessageField is the field number (the largest protobuf allows) under which the
// codec records an unmarshal error in a message's unknown fields.
const badMessageField protowire.Number = protowire.MaxValidNumber

// lenientCodec is grpc's proto codec whose Unmarshal records errors in the message.
type lenientCodec struct {
	base encoding.CodecV2
}

func newLenientCodec() encoding.CodecV2 {
	return lenientCodec{base: encoding.GetCodecV2("proto")}
}

func (c lenientCodec) Name() string { return c.base.Name() }

func (c lenientCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*relatav1.LookupResourcesResponse); ok && len(m.Results) > 0 {
		if data, ok := marshalLookupBatch(m); ok {
			return data, nil
		}
	}
	return c.base.Marshal(v)
}

func (c lenientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.base.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return err
	}
	proto.Reset(m)
	var b []byte
	b = protowire.AppendTag(b, badMessageField, protowire.BytesType)
	b = protowire.AppendString(b, err.Error())
	m.ProtoReflect().SetUnknown(b)
	return nil
}

// badMessage returns the INVALID_ARGUMENT error of a message the codec could not
// unmarshal, or nil.
func badMessage(v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return nil
	}
	unknown := m.ProtoReflect().GetUnknown()
	for len(unknown) > 0 {
		num, typ, n := protowire.ConsumeTag(unknown)
		if n < 0 {
			return nil
		}
		unknown = unknown[n:]
		if num == badMessageField && typ == protowire.BytesType {
			msg, n := protowire.ConsumeString(unknown)
			if n < 0 {
				return nil
			}
			return newStatus(codes.InvalidArgument, relatav1.ErrorReason_INVALID_REQUEST,
				fmt.Sprintf("malformed protobuf %s: %s", m.ProtoReflect().Descriptor().FullName(), echoValue(msg)),
				map[string]string{"field": "body"})
		}
		n = protowire.ConsumeFieldValue(num, typ, unknown)
		if n < 0 {
			return nil
		}
		unknown = unknown[n:]
	}
	return nil
}

func (s *Server) badMessageStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &checkedStream{ServerStream: ss})
}

// checkedStream fails RecvMsg for a message the codec could not unmarshal.
type checkedStream struct {
	grpc.ServerStream
}

func (s *checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return badMessage(m)
}
