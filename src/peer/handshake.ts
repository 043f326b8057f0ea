import { encodeFrame, FrameType, ProtocolError } from './frame';

// Peer protocol, version 1: what a connection carries (framing is in frame.ts).
// Integers in bodies are big-endian; IDs are full u64.
//
// The dialer speaks first, then waits for the answer before anything else:
//   HELLO       magic "CAIRNPER" | u16 protocol version | u8 stream kind (1 messages, 2 snapshot)
//               | u64 cluster id | u64 sender member id | u64 intended receiver member id
//   HELLO_ACK   u8 status | u16 protocol version | u64 cluster id | u64 responder member id
//               | utf8 reason (empty when accepted)
// The listener refuses a HELLO from another protocol version, another cluster, or addressed
// to another member (status != 0): it sends the HELLO_ACK with the reason and closes.
//
// Message stream (one per ordered pair of members, dialer to listener):
//   BATCH       repeated { u32 message length | message bytes }, messages in send order
//   PING        8 opaque bytes; the listener answers PONG with the same 8 bytes (round trip)
// Snapshot stream (a connection of its own, one snapshot per connection):
//   SNAP_BEGIN  snapshot metadata bytes                                     (dialer)
//   SNAP_CHUNK  snapshot data bytes, any number of them                     (dialer)
//   SNAP_END    empty: the data is complete                                 (dialer)
//   SNAP_RESULT u8 1 installed / 0 failed | utf8 error                      (listener)
// After SNAP_RESULT both sides close. The listener may answer before SNAP_END (its handler
// finished or failed early); the dialer then stops sending.

export const PEER_PROTOCOL_VERSION = 1;
export const HELLO_MAGIC = Buffer.from('CAIRNPER', 'latin1');
const HELLO_BYTES = 8 + 2 + 1 + 8 + 8 + 8;
const HELLO_ACK_HEAD_BYTES = 1 + 2 + 8 + 8;
/** The reason text in a refusal is cut to this many bytes. */
const REASON_BYTES_MAX = 512;

export const enum StreamKind {
  Messages = 1,
  Snapshot = 2,
}

export const enum HelloStatus {
  Ok = 0,
  VersionMismatch = 1,
  ClusterMismatch = 2,
  MemberMismatch = 3,
  Busy = 4,
}

export interface Hello {
  version: number;
  kind: StreamKind;
  clusterId: bigint;
  fromId: bigint;
  toId: bigint;
}

export interface HelloAck {
  status: HelloStatus;
  version: number;
  clusterId: bigint;
  memberId: bigint;
  reason: string;
}

export function encodeHello(h: Hello): Buffer {
  const b = Buffer.allocUnsafe(HELLO_BYTES);
  HELLO_MAGIC.copy(b, 0);
  b.writeUInt16BE(h.version, 8);
  b[10] = h.kind;
  b.writeBigUInt64BE(h.clusterId, 11);
  b.writeBigUInt64BE(h.fromId, 19);
  b.writeBigUInt64BE(h.toId, 27);
  return encodeFrame(FrameType.Hello, b);
}

export function decodeHello(body: Buffer): Hello {
  if (body.length < HELLO_BYTES || !body.subarray(0, 8).equals(HELLO_MAGIC)) {
    throw new ProtocolError('not a cairn peer handshake');
  }
  const kind = body[10]!;
  if (kind !== StreamKind.Messages && kind !== StreamKind.Snapshot) {
    throw new ProtocolError(`unknown stream kind ${kind}`);
  }
  return {
    version: body.readUInt16BE(8),
    kind,
    clusterId: body.readBigUInt64BE(11),
    fromId: body.readBigUInt64BE(19),
    toId: body.readBigUInt64BE(27),
  };
}

export function encodeHelloAck(a: HelloAck): Buffer {
  const reason = Buffer.from(a.reason, 'utf8').subarray(0, REASON_BYTES_MAX);
  const b = Buffer.allocUnsafe(HELLO_ACK_HEAD_BYTES + reason.length);
  b[0] = a.status;
  b.writeUInt16BE(a.version, 1);
  b.writeBigUInt64BE(a.clusterId, 3);
  b.writeBigUInt64BE(a.memberId, 11);
  reason.copy(b, HELLO_ACK_HEAD_BYTES);
  return encodeFrame(FrameType.HelloAck, b);
}

export function decodeHelloAck(body: Buffer): HelloAck {
  if (body.length < HELLO_ACK_HEAD_BYTES) throw new ProtocolError('handshake answer too short');
  return {
    status: body[0]!,
    version: body.readUInt16BE(1),
    clusterId: body.readBigUInt64BE(3),
    memberId: body.readBigUInt64BE(11),
    reason: body.subarray(HELLO_ACK_HEAD_BYTES).toString('utf8'),
  };
}

/** Why `hello` is refused by member `memberId` of cluster `clusterId`, or undefined if accepted. */
export function checkHello(hello: Hello, clusterId: bigint, memberId: bigint): { status: HelloStatus; reason: string } | undefined {
  if (hello.version !== PEER_PROTOCOL_VERSION) {
    return {
      status: HelloStatus.VersionMismatch,
      reason: `peer protocol version ${hello.version} is not supported (this member speaks ${PEER_PROTOCOL_VERSION})`,
    };
  }
  if (hello.clusterId !== clusterId) {
    return {
      status: HelloStatus.ClusterMismatch,
      reason: `cluster ID mismatch: sender is in cluster ${idHex(hello.clusterId)}, this member is in cluster ${idHex(clusterId)}`,
    };
  }
  if (hello.toId !== memberId) {
    return {
      status: HelloStatus.MemberMismatch,
      reason: `member ID mismatch: sender addressed member ${idHex(hello.toId)}, this is member ${idHex(memberId)}`,
    };
  }
  return undefined;
}

export function idHex(id: bigint): string {
  return id.toString(16);
}
