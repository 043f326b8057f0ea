import { crc32 } from 'node:zlib';

// Peer protocol framing, version 1 (see PEER_PROTOCOL_VERSION in handshake.ts for the
// frames a connection carries and in which order).
//
// A connection carries frames back to back in each direction:
//
//   u32le body length | u32le crc32(type byte + body) | u8 type | body
//
// The receiver checks the length against a bound before it buffers the body
// (HANDSHAKE_FRAME_BYTES_MAX until the handshake is accepted, FRAME_BYTES_MAX after) and
// the crc once the body is in. A bad length, crc or type closes the connection: a peer
// connection is never resynchronised, the dialer reconnects.

export const FRAME_HEADER_BYTES = 9;
/** Largest frame body after the handshake; bounds memory per connection. */
export const FRAME_BYTES_MAX = 64 * 1024 * 1024;
/** Largest frame body before the handshake is accepted (a HELLO is 35 bytes). */
export const HANDSHAKE_FRAME_BYTES_MAX = 1024;

export const enum FrameType {
  Hello = 1,
  HelloAck = 2,
  Batch = 3,
  Ping = 4,
  Pong = 5,
  SnapshotBegin = 6,
  SnapshotChunk = 7,
  SnapshotEnd = 8,
  SnapshotResult = 9,
}
const FRAME_TYPE_MAX = 9;

export interface Frame {
  type: FrameType;
  body: Buffer;
}

/** A peer broke the protocol; the connection is closed with this reason. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** Writes the 9-byte header for a body already in `frame` after it, and its crc. */
export function sealFrame(frame: Buffer, type: FrameType): Buffer {
  const bodyBytes = frame.length - FRAME_HEADER_BYTES;
  frame.writeUInt32LE(bodyBytes, 0);
  frame[8] = type;
  frame.writeUInt32LE(crc32(frame.subarray(8)), 4);
  return frame;
}

export function encodeFrame(type: FrameType, body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  frame.set(body, FRAME_HEADER_BYTES);
  return sealFrame(frame, type);
}

/** The header alone, for a large body written separately (no copy of the body). */
export function frameHeader(type: FrameType, body: Uint8Array): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32LE(body.length, 0);
  header[8] = type;
  header.writeUInt32LE(crc32(body, crc32(header.subarray(8))), 4);
  return header;
}

/**
 * Cuts a byte stream into frames. Holds at most one frame plus one socket read of bytes:
 * the caller pushes a chunk and then drains next() until it returns null.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;

  constructor(public bodyBytesMax: number) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
  }

  /** The next whole frame, or null when more bytes are needed. Throws ProtocolError. */
  next(): Frame | null {
    if (this.bufferedBytes < FRAME_HEADER_BYTES) return null;
    const head = this.peekHeader();
    const bodyBytes = head.readUInt32LE(0);
    if (bodyBytes > this.bodyBytesMax) {
      throw new ProtocolError(`frame body of ${bodyBytes} bytes exceeds the bound of ${this.bodyBytesMax}`);
    }
    const type = head[8]!;
    if (type === 0 || type > FRAME_TYPE_MAX) throw new ProtocolError(`unknown frame type ${type}`);
    const frameBytes = FRAME_HEADER_BYTES + bodyBytes;
    if (this.bufferedBytes < frameBytes) return null;
    const frame = this.take(frameBytes);
    if (crc32(frame.subarray(8)) !== frame.readUInt32LE(4)) throw new ProtocolError('frame checksum mismatch');
    return { type, body: frame.subarray(FRAME_HEADER_BYTES) };
  }

  private peekHeader(): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= FRAME_HEADER_BYTES) return first;
    const merged = Buffer.concat(this.chunks, this.bufferedBytes);
    this.chunks = [merged];
    return merged;
  }

  /** Removes and returns the first `n` bytes; copies only when they span chunks. */
  private take(n: number): Buffer {
    this.bufferedBytes -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const want = n - filled;
      if (chunk.length <= want) {
        chunk.copy(out, filled);
        filled += chunk.length;
        this.chunks.shift();
      } else {
        chunk.copy(out, filled, 0, want);
        filled += want;
        this.chunks[0] = chunk.subarray(want);
      }
    }
    return out;
  }
}
