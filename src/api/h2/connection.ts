import type { Duplex } from 'node:stream';
import { HpackConstants, HpackDecoder, HpackError } from './hpack';

// The server side of one HTTP/2 connection (RFC 9113), as much of it as a gRPC server
// needs: frames in and out, header blocks (HPACK in hpack.ts), streams, and flow control
// both ways. What a stream carries is for its handler (front.ts) to decide.
//
// Why not node:http2: every call there is a C++ stream object behind a weak handle and an
// external string per request header value, all of which only a full GC releases; at
// thousands of calls a second per member those made most of a major GC's pause, the write
// tail (bench/README, session 5). Here a call is a few plain objects that die young.
//
// Output is corked for the rest of the tick, so the frames of many answers leave in one
// write.

export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

const FRAME_HEADER_BYTES = 9;
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;
const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

const SETTINGS_HEADER_TABLE_SIZE = 0x1;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;

/** The frame payload size both sides start with, and the most this server accepts. */
const DEFAULT_MAX_FRAME_BYTES = 16_384;
const DEFAULT_WINDOW_BYTES = 65_535;
const MAX_WINDOW_BYTES = 2 ** 31 - 1;
/** What this server lets a client send ahead, per stream and per connection. */
const STREAM_WINDOW_BYTES = 1 << 20;
const CONNECTION_WINDOW_BYTES = 16 << 20;
/** A header block (HEADERS and its CONTINUATIONs) larger than this ends the connection. */
const MAX_HEADER_BLOCK_BYTES = 256 * 1024;

export class H2Error extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** What a stream's handler hears from the client. */
export interface StreamHandler {
  /** Request bytes (DATA payload without padding). */
  onData(stream: H2Stream, chunk: Buffer): void;
  /** The client finished its side (END_STREAM). */
  onEnd(stream: H2Stream): void;
  /** The stream is gone before the handler ended it: reset by the client, or the connection closed. */
  onAbort(stream: H2Stream, code: number): void;
  /** All queued output of the stream was sent (after a write that found no window). */
  onDrain?(stream: H2Stream): void;
  /** Both sides ended and everything went out: the stream is done. */
  onClose?(stream: H2Stream): void;
}

/**
 * One stream. The handler answers with header blocks (constantHeaders() or headers()),
 * data(), and an end of its side (a block with `end`, or endData()), or reset(). Output
 * waits for flow-control window in order.
 */
export class H2Stream {
  handler: StreamHandler | undefined;
  /** The stream's send window (the client's receive window for it). */
  sendWindow: number;
  /** Bytes the client may still send before this server grants more. */
  private recvWindow = STREAM_WINDOW_BYTES;
  private recvConsumed = 0;
  /** Frames waiting for window (DATA), or behind one that waits (anything). */
  queue: Buffer[] | undefined;
  remoteEnded = false;
  localEnded = false;
  closed = false;

  constructor(
    readonly conn: H2Connection,
    readonly id: number,
    /** Request header fields: names and values alternating, as decoded. */
    readonly fields: string[],
    initialWindow: number,
  ) {
    this.sendWindow = initialWindow;
  }

  /** The first value of a request header, or undefined. */
  header(name: string): string | undefined {
    const f = this.fields;
    for (let i = 0; i < f.length; i += 2) if (f[i] === name) return f[i + 1];
    return undefined;
  }

  /** Sends one of the connection's constant header blocks (ConnectionOptions.constantBlocks), indexed in the peer's table. */
  constantHeaders(i: number, end: boolean): void {
    if (this.closed || this.localEnded) return;
    if (end) this.localEnded = true;
    this.conn.sendConstantHeaders(this, i, end);
  }

  /** Sends a pre-encoded header block; `end` ends this side (trailers, or a trailers-only answer). */
  headers(block: Buffer, end: boolean): void {
    if (this.closed || this.localEnded) return;
    if (end) this.localEnded = true;
    this.conn.sendHeaders(this, block, end);
  }

  /** Sends bytes as DATA (split to the client's frame size, waiting for window). True if all went out now. */
  data(bytes: Buffer): boolean {
    if (this.closed || this.localEnded) return false;
    return this.conn.sendData(this, bytes, false);
  }

  /** Ends this side with an empty DATA frame carrying END_STREAM (when there are no trailers). */
  endData(): void {
    if (this.closed || this.localEnded) return;
    this.localEnded = true;
    this.conn.sendData(this, EMPTY, true);
  }

  /** Resets the stream (RST_STREAM); the handler hears nothing more. */
  reset(code: number = ErrorCode.CANCEL): void {
    if (this.closed) return;
    this.conn.resetStream(this, code);
  }

  /** Counts consumed request bytes and grants the client more window when half is used. */
  consumed(n: number): void {
    this.recvConsumed += n;
    if (!this.remoteEnded && this.recvConsumed >= STREAM_WINDOW_BYTES / 2) {
      this.conn.windowUpdate(this.id, this.recvConsumed);
      this.recvWindow += this.recvConsumed;
      this.recvConsumed = 0;
    }
  }

  /** Internal: the client sent `n` bytes on this stream. */
  received(n: number): void {
    this.recvWindow -= n;
    if (this.recvWindow < 0) throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, `stream ${this.id} sent past its window`);
  }
}

const EMPTY = Buffer.alloc(0);

export interface ConnectionOptions {
  maxConcurrentStreams: number;
  /** Header blocks sent on most calls (H2Stream.constantHeaders), indexed in the peer's HPACK table. */
  constantBlocks: ReadonlyArray<ReadonlyArray<readonly [string, string]>>;
  /** Picks the handler of a new stream (after its request headers). */
  onStream(stream: H2Stream): void;
  /** The connection is gone (after every stream's onAbort). */
  onClose?(conn: H2Connection): void;
  /** An unexpected error while handling the connection's input (it is closed after). */
  onError?(err: unknown): void;
}

export class H2Connection {
  private buf: Buffer = EMPTY;
  private prefaceSeen = false;
  private readonly decoder = new HpackDecoder();
  private readonly constants: HpackConstants;
  readonly streams = new Map<number, H2Stream>();
  private lastStreamId = 0;
  /** A header block being assembled from CONTINUATION frames. */
  private continuing: { id: number; flags: number; parts: Buffer[]; bytes: number } | undefined;
  /** The client's settings that shape what this side sends. */
  private peerInitialWindow = DEFAULT_WINDOW_BYTES;
  private peerMaxFrame = DEFAULT_MAX_FRAME_BYTES;
  private sendWindow = DEFAULT_WINDOW_BYTES;
  private recvConsumed = 0;
  private recvWindow = CONNECTION_WINDOW_BYTES;
  /** Streams with frames waiting for window, in the order they blocked. */
  private readonly blocked = new Set<H2Stream>();
  private corked = false;
  private goingAway = false;
  closed = false;

  constructor(
    readonly socket: Duplex,
    private readonly opts: ConnectionOptions,
    /** Bytes already read from the socket (the preface, at least partly). */
    initial: Buffer,
  ) {
    this.constants = new HpackConstants(opts.constantBlocks);
    // Our settings, and the connection window raised from 64 KiB.
    const settings = Buffer.alloc(18);
    settings.writeUInt16BE(SETTINGS_MAX_CONCURRENT_STREAMS, 0);
    settings.writeUInt32BE(Math.min(opts.maxConcurrentStreams, 2 ** 31 - 1), 2);
    settings.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, 6);
    settings.writeUInt32BE(STREAM_WINDOW_BYTES, 8);
    settings.writeUInt16BE(SETTINGS_HEADER_TABLE_SIZE, 12);
    settings.writeUInt32BE(4096, 14);
    this.write(frameHeader(settings.length, FrameType.SETTINGS, 0, 0), settings);
    this.windowUpdate(0, CONNECTION_WINDOW_BYTES - DEFAULT_WINDOW_BYTES);
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.destroy());
    socket.on('end', () => this.destroy());
    if (initial.length > 0) this.onBytes(initial);
  }

  /** Stops taking streams (GOAWAY); the connection closes when the open ones are done, or now with `force`. */
  goAway(force = false): void {
    if (this.closed) return;
    if (!this.goingAway) {
      this.goingAway = true;
      this.sendGoAway(ErrorCode.NO_ERROR);
    }
    if (force || this.streams.size === 0) this.end();
  }

  private end(): void {
    if (this.closed) return;
    this.flushNow();
    this.socket.end();
    // A peer that never closes its side must not hold the socket.
    setTimeout(() => this.destroy(), 1000).unref();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams.values()) this.abort(s, ErrorCode.CANCEL);
    this.streams.clear();
    this.blocked.clear();
    this.socket.destroy();
    this.opts.onClose?.(this);
  }

  // ---- input -------------------------------------------------------------------------

  private onBytes(chunk: Buffer): void {
    if (this.closed) return;
    let buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    try {
      if (!this.prefaceSeen) {
        const n = Math.min(buf.length, HTTP2_PREFACE.length);
        if (!buf.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n))) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'bad connection preface');
        if (buf.length < HTTP2_PREFACE.length) {
          this.buf = buf;
          return;
        }
        this.prefaceSeen = true;
        buf = buf.subarray(HTTP2_PREFACE.length);
      }
      let off = 0;
      while (buf.length - off >= FRAME_HEADER_BYTES) {
        const len = (buf[off] << 16) | (buf[off + 1] << 8) | buf[off + 2];
        if (len > DEFAULT_MAX_FRAME_BYTES) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, `frame of ${len} bytes`);
        if (buf.length - off < FRAME_HEADER_BYTES + len) break;
        const type = buf[off + 3];
        const flags = buf[off + 4];
        const id = buf.readUInt32BE(off + 5) & 0x7fffffff;
        const payload = buf.subarray(off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + len);
        off += FRAME_HEADER_BYTES + len;
        this.onFrame(type, flags, id, payload);
        if (this.closed) return;
      }
      // Keep the incomplete rest (a copy only when it is small, so a large read is not held whole).
      const rest = buf.subarray(off);
      this.buf = rest.length === 0 ? EMPTY : rest.length < 4096 ? Buffer.from(rest) : rest;
    } catch (e) {
      if (e instanceof H2Error) this.fail(e.code, e.message);
      else if (e instanceof HpackError) this.fail(ErrorCode.COMPRESSION_ERROR, e.message);
      else {
        // A bug behind one connection ends that connection, not the member.
        this.opts.onError?.(e);
        this.fail(ErrorCode.INTERNAL_ERROR, String(e));
      }
    }
  }

  /** A connection error: GOAWAY with `code`, then close. */
  private fail(code: number, _why: string): void {
    if (this.closed) return;
    this.sendGoAway(code);
    this.flushNow();
    this.destroy();
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.continuing !== undefined && type !== FrameType.CONTINUATION) {
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'expected CONTINUATION');
    }
    switch (type) {
      case FrameType.DATA:
        return this.onData(flags, id, payload);
      case FrameType.HEADERS:
        return this.onHeaders(flags, id, payload);
      case FrameType.CONTINUATION:
        return this.onContinuation(flags, id, payload);
      case FrameType.RST_STREAM: {
        if (id === 0 || payload.length !== 4) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'bad RST_STREAM');
        const s = this.streams.get(id);
        if (s !== undefined) this.abort(s, payload.readUInt32BE(0));
        return;
      }
      case FrameType.SETTINGS:
        return this.onSettings(flags, id, payload);
      case FrameType.PING:
        if (id !== 0 || payload.length !== 8) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'bad PING');
        if ((flags & FLAG_ACK) === 0) this.write(frameHeader(8, FrameType.PING, FLAG_ACK, 0), Buffer.from(payload));
        return;
      case FrameType.GOAWAY:
        this.goAway();
        return;
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(id, payload);
      case FrameType.PUSH_PROMISE:
        throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'a client may not push');
      case FrameType.PRIORITY:
      default:
        return; // priorities are advice; unknown frame types are ignored (RFC 9113 4.1)
    }
  }

  private onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & FLAG_ACK) return;
    if (payload.length % 6 !== 0) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, 'bad SETTINGS length');
    for (let i = 0; i < payload.length; i += 6) {
      const key = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      if (key === SETTINGS_INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW_BYTES) throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, 'initial window too large');
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const s of this.streams.values()) s.sendWindow += delta;
        if (delta > 0) this.unblock();
      } else if (key === SETTINGS_HEADER_TABLE_SIZE) {
        this.constants.setPeerTableSize(value);
      } else if (key === SETTINGS_MAX_FRAME_SIZE) {
        if (value < DEFAULT_MAX_FRAME_BYTES || value > 16_777_215) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'bad max frame size');
        this.peerMaxFrame = value;
      }
      // The rest (push, concurrency of server streams, header list size) do not shape our output.
    }
    this.write(frameHeader(0, FrameType.SETTINGS, FLAG_ACK, 0));
  }

  private onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, 'bad WINDOW_UPDATE');
    const inc = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'zero window increment');
      this.sendWindow += inc;
      if (this.sendWindow > MAX_WINDOW_BYTES) throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, 'connection window overflow');
      this.unblock();
      return;
    }
    const s = this.streams.get(id);
    if (s === undefined) return;
    if (inc === 0) {
      this.resetStream(s, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    s.sendWindow += inc;
    if (s.sendWindow > MAX_WINDOW_BYTES) {
      this.resetStream(s, ErrorCode.FLOW_CONTROL_ERROR);
      return;
    }
    if (s.queue !== undefined) this.unblock();
  }

  private onHeaders(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let start = 0;
    let end = payload.length;
    if (flags & FLAG_PADDED) {
      const pad = payload[0];
      start = 1;
      end -= pad;
    }
    if (flags & FLAG_PRIORITY) start += 5;
    if (start > end) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'bad HEADERS padding');
    const fragment = payload.subarray(start, end);
    if (flags & FLAG_END_HEADERS) this.onHeaderBlock(id, flags, fragment);
    else this.continuing = { id, flags, parts: [Buffer.from(fragment)], bytes: fragment.length };
  }

  private onContinuation(flags: number, id: number, payload: Buffer): void {
    const c = this.continuing;
    if (c === undefined || c.id !== id) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'unexpected CONTINUATION');
    c.parts.push(Buffer.from(payload));
    c.bytes += payload.length;
    if (c.bytes > MAX_HEADER_BLOCK_BYTES) throw new H2Error(ErrorCode.ENHANCE_YOUR_CALM, 'header block too large');
    if (flags & FLAG_END_HEADERS) {
      this.continuing = undefined;
      this.onHeaderBlock(id, c.flags, Buffer.concat(c.parts, c.bytes));
    }
  }

  private onHeaderBlock(id: number, flags: number, block: Buffer): void {
    // Decoded even for a stream about to be refused: the table state is shared.
    const fields = this.decoder.decode(block);
    const existing = this.streams.get(id);
    if (existing !== undefined) {
      // Trailers: gRPC clients send none, but they must end the stream.
      if ((flags & FLAG_END_STREAM) === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'trailers without END_STREAM');
      this.remoteEnd(existing);
      return;
    }
    if (id % 2 === 0 || id <= this.lastStreamId) {
      // A closed stream (a reset raced with it) or a bad id.
      if (id % 2 === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, `client stream id ${id} is even`);
      this.write(rstFrame(id, ErrorCode.STREAM_CLOSED));
      return;
    }
    this.lastStreamId = id;
    if (this.goingAway || this.streams.size >= this.opts.maxConcurrentStreams) {
      this.write(rstFrame(id, ErrorCode.REFUSED_STREAM));
      return;
    }
    const s = new H2Stream(this, id, fields, this.peerInitialWindow);
    this.streams.set(id, s);
    this.opts.onStream(s);
    if (flags & FLAG_END_STREAM && !s.closed) this.remoteEnd(s);
  }

  private onData(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    const n = payload.length;
    this.recvWindow -= n;
    if (this.recvWindow < 0) throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, 'connection window exceeded');
    // The connection window comes back at once: what a stream holds is bounded by its own.
    this.recvConsumed += n;
    if (this.recvConsumed >= CONNECTION_WINDOW_BYTES / 2) {
      this.windowUpdate(0, this.recvConsumed);
      this.recvWindow += this.recvConsumed;
      this.recvConsumed = 0;
    }
    const s = this.streams.get(id);
    if (s === undefined || s.remoteEnded) {
      if (id > this.lastStreamId) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'DATA on an idle stream');
      if (s !== undefined) this.resetStream(s, ErrorCode.STREAM_CLOSED);
      return; // a stream this side reset: its late data is dropped
    }
    s.received(n);
    let start = 0;
    let end = n;
    if (flags & FLAG_PADDED) {
      start = 1;
      end -= payload[0];
      if (end < start) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'bad DATA padding');
      s.consumed(n - (end - start)); // padding counts against the window but carries nothing
    }
    if (end > start) s.handler?.onData(s, payload.subarray(start, end));
    if (flags & FLAG_END_STREAM && !s.closed) this.remoteEnd(s);
  }

  private remoteEnd(s: H2Stream): void {
    s.remoteEnded = true;
    s.handler?.onEnd(s);
    this.maybeClose(s);
  }

  private abort(s: H2Stream, code: number): void {
    if (s.closed) return;
    this.forget(s);
    s.handler?.onAbort(s, code);
    this.endIfDone();
  }

  private maybeClose(s: H2Stream): void {
    if (s.closed || !s.localEnded || s.queue !== undefined) return;
    // An answer complete before the request (a refused call, a stream the server ended):
    // the client is asked to stop sending, without error (RFC 9113 8.1), as grpc-go does.
    if (!s.remoteEnded) this.write(rstFrame(s.id, ErrorCode.NO_ERROR));
    this.forget(s);
    s.handler?.onClose?.(s);
    this.endIfDone();
  }

  /** A stream is over: nothing more goes out for it or comes in to it. */
  private forget(s: H2Stream): void {
    s.closed = true;
    this.streams.delete(s.id);
    this.blocked.delete(s);
    s.queue = undefined;
  }

  /** After GOAWAY, the connection ends with its last stream. */
  private endIfDone(): void {
    if (this.goingAway && this.streams.size === 0) this.end();
  }

  // ---- output ------------------------------------------------------------------------

  resetStream(s: H2Stream, code: number): void {
    if (s.closed) return;
    this.write(rstFrame(s.id, code));
    this.forget(s);
    this.endIfDone();
  }

  windowUpdate(id: number, inc: number): void {
    const f = Buffer.allocUnsafe(13);
    writeFrameHeader(f, 4, FrameType.WINDOW_UPDATE, 0, id);
    f.writeUInt32BE(inc, 9);
    this.write(f);
  }

  sendHeaders(s: H2Stream, block: Buffer, end: boolean): void {
    const flags = FLAG_END_HEADERS | (end ? FLAG_END_STREAM : 0);
    if (s.queue !== undefined) s.queue.push(HEADER_BLOCK, block, Buffer.of(flags));
    else this.writeHeaderBlock(s.id, block, flags);
    if (end) this.maybeClose(s);
  }

  sendConstantHeaders(s: H2Stream, i: number, end: boolean): void {
    const flags = FLAG_END_HEADERS | (end ? FLAG_END_STREAM : 0);
    // Encoded when written: the peer's table is in the state the wire order leaves it.
    if (s.queue !== undefined) s.queue.push(CONSTANT_BLOCK[i], Buffer.of(flags));
    else this.writeHeaderBlock(s.id, this.constants.block(i), flags);
    if (end) this.maybeClose(s);
  }

  /** Writes a header block as HEADERS (and CONTINUATION frames past the peer's frame size). */
  private writeHeaderBlock(id: number, block: Buffer, flags: number): void {
    // A table size change the peer asked for is signalled at the start of the next block (RFC 7541 4.2).
    if (this.constants.takeSizeUpdate()) block = Buffer.concat([Buffer.of(0x20), block]);
    if (block.length <= this.peerMaxFrame) {
      this.write(frameHeader(block.length, FrameType.HEADERS, flags, id), block);
      return;
    }
    const max = this.peerMaxFrame;
    this.write(frameHeader(max, FrameType.HEADERS, flags & ~FLAG_END_HEADERS, id), block.subarray(0, max));
    for (let off = max; off < block.length; off += max) {
      const n = Math.min(max, block.length - off);
      this.write(frameHeader(n, FrameType.CONTINUATION, off + n === block.length ? FLAG_END_HEADERS : 0, id), block.subarray(off, off + n));
    }
  }

  sendData(s: H2Stream, bytes: Buffer, end: boolean): boolean {
    if (s.queue !== undefined) {
      s.queue.push(dataMarker(end), bytes);
      return false;
    }
    const sent = this.pushData(s, bytes, end);
    if (!sent) this.blocked.add(s);
    else if (end) this.maybeClose(s);
    return sent;
  }

  /** Sends as much of `bytes` as the windows allow; queues the rest on the stream. True if all went. */
  private pushData(s: H2Stream, bytes: Buffer, end: boolean): boolean {
    let off = 0;
    do {
      const n = Math.min(bytes.length - off, this.peerMaxFrame, this.sendWindow, s.sendWindow);
      if (n <= 0 && bytes.length - off > 0) {
        s.queue = [dataMarker(end), bytes.subarray(off)];
        return false;
      }
      const last = off + n === bytes.length;
      this.write(frameHeader(n, FrameType.DATA, last && end ? FLAG_END_STREAM : 0, s.id), n > 0 ? bytes.subarray(off, off + n) : undefined);
      this.sendWindow -= n;
      s.sendWindow -= n;
      off += n;
    } while (off < bytes.length);
    return true;
  }

  /** Sends what blocked streams queued, as far as the windows now allow. */
  private unblock(): void {
    for (const s of this.blocked) {
      if (this.sendWindow <= 0) return;
      const q = s.queue;
      if (q === undefined) {
        this.blocked.delete(s);
        continue;
      }
      s.queue = undefined;
      let i = 0;
      let stuck = false;
      while (i < q.length) {
        const item = q[i];
        if (isDataMarker(item)) {
          const end = item === DATA_END;
          const bytes = q[i + 1];
          i += 2;
          if (!this.pushData(s, bytes, end)) {
            s.queue!.push(...q.slice(i));
            stuck = true;
            break;
          }
        } else if (item === HEADER_BLOCK) {
          this.writeHeaderBlock(s.id, q[i + 1], q[i + 2][0]);
          i += 3;
        } else if (CONSTANT_BLOCK.includes(item)) {
          this.writeHeaderBlock(s.id, this.constants.block(CONSTANT_BLOCK.indexOf(item)), q[i + 1][0]);
          i += 2;
        } else {
          this.write(item);
          i++;
        }
      }
      if (stuck) continue;
      this.blocked.delete(s);
      s.handler?.onDrain?.(s);
      this.maybeClose(s);
    }
  }

  private sendGoAway(code: number): void {
    const f = Buffer.allocUnsafe(17);
    writeFrameHeader(f, 8, FrameType.GOAWAY, 0, 0);
    f.writeUInt32BE(this.lastStreamId, 9);
    f.writeUInt32BE(code, 13);
    this.write(f);
  }

  private write(a: Buffer, b?: Buffer): void {
    if (this.closed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => this.flushNow());
    }
    this.socket.write(a);
    if (b !== undefined && b.length > 0) this.socket.write(b);
  }

  private flushNow(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  }
}

// A stream's queue holds what it could not send yet, in order, each item a marker and its
// parts: DATA (bytes, framed when there is window), a header block, or a constant one.
const DATA_MORE = Buffer.alloc(0);
const DATA_END = Buffer.alloc(0);
function dataMarker(end: boolean): Buffer {
  return end ? DATA_END : DATA_MORE;
}
function isDataMarker(b: Buffer): boolean {
  return b === DATA_MORE || b === DATA_END;
}
/** A header block, then a byte of frame flags. */
const HEADER_BLOCK = Buffer.alloc(0);
/** A constant header block to encode when its turn comes, then a byte of frame flags. */
const CONSTANT_BLOCK: Buffer[] = Array.from({ length: 4 }, () => Buffer.alloc(0));

function frameHeader(length: number, type: number, flags: number, id: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  writeFrameHeader(h, length, type, flags, id);
  return h;
}

function writeFrameHeader(b: Buffer, length: number, type: number, flags: number, id: number): void {
  b[0] = (length >>> 16) & 0xff;
  b[1] = (length >>> 8) & 0xff;
  b[2] = length & 0xff;
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(id, 5);
}

function rstFrame(id: number, code: number): Buffer {
  const f = Buffer.allocUnsafe(13);
  writeFrameHeader(f, 4, FrameType.RST_STREAM, 0, id);
  f.writeUInt32BE(code, 9);
  return f;
}
