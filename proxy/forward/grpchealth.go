package forward

import "encoding/binary"

// gRPC's health protocol (grpc/health/v1/health.proto), the two messages
// a health check needs, encoded by hand: a few bytes do not call for a
// protobuf dependency in the binary.
//
//	message HealthCheckRequest { string service = 1; }
//	message HealthCheckResponse { ServingStatus status = 1; }  // SERVING = 1

// grpcHealthPath is the method a gRPC health check calls.
const grpcHealthPath = "/grpc.health.v1.Health/Check"

// grpcServing is HealthCheckResponse's status SERVING.
const grpcServing = 1

// grpcHealthRequest returns HealthCheckRequest{service} in its gRPC
// frame: a zero byte (not compressed), the message's length in four bytes
// big-endian, the message. An empty service is the empty message, as
// proto3 leaves a default value out.
func grpcHealthRequest(service string) []byte {
	b := make([]byte, 5, 5+1+binary.MaxVarintLen64+len(service))
	if service != "" {
		b = append(b, 1<<3|2) // field 1, length-delimited
		b = binary.AppendUvarint(b, uint64(len(service)))
		b = append(b, service...)
	}
	binary.BigEndian.PutUint32(b[1:5], uint32(len(b)-5))
	return b
}

// grpcHealthStatus reads a Health/Check answer's body: exactly one
// uncompressed gRPC frame holding a HealthCheckResponse. It returns the
// status field (0, UNKNOWN, when absent; the last one when repeated, and
// cut to 32 bits, as protobuf reads an enum), and ok false for anything
// that is not such a body. Fields other than status, and a status of
// another wire type, are skipped as protobuf skips unknown fields;
// groups, which proto3 never writes, are refused.
func grpcHealthStatus(body []byte) (status int32, ok bool) {
	if len(body) < 5 || body[0] != 0 || uint64(binary.BigEndian.Uint32(body[1:5])) != uint64(len(body)-5) {
		return 0, false
	}
	msg := body[5:]
	for len(msg) > 0 {
		key, n := binary.Uvarint(msg)
		if n <= 0 {
			return 0, false
		}
		msg = msg[n:]
		if field := key >> 3; field < 1 || field > 1<<29-1 {
			return 0, false
		}
		switch key & 7 {
		case 0: // varint
			v, n := binary.Uvarint(msg)
			if n <= 0 {
				return 0, false
			}
			msg = msg[n:]
			if key>>3 == 1 {
				status = int32(v)
			}
		case 1: // 64-bit
			if len(msg) < 8 {
				return 0, false
			}
			msg = msg[8:]
		case 2: // length-delimited
			l, n := binary.Uvarint(msg)
			if n <= 0 || l > uint64(len(msg)-n) {
				return 0, false
			}
			msg = msg[n+int(l):]
		case 5: // 32-bit
			if len(msg) < 4 {
				return 0, false
			}
			msg = msg[4:]
		default:
			return 0, false
		}
	}
	return status, true
}
