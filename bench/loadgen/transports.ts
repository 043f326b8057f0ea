/**
 * How one load-generator thread puts unary gRPC calls on the wire. Two transports:
 *
 * - 'h2' (default): gRPC framing done by hand on node:http2 — one HTTP/2 stream per call
 *   with fixed headers, the pre-framed request as the body, the response frame and
 *   grpc-status read back. On this machine it costs about 50 µs of CPU per call against
 *   about 130 µs through grpc-js (see bench/README.md), which matters when the load
 *   generator shares two cores with the server.
 * - 'grpc-js': `Client.makeUnaryRequest` with identity (de)serializers, one channel per
 *   connection (local subchannel pool), retries off. The reference client stack.
 *
 * Both deliver the message bytes of a successful response (without the 5-byte gRPC
 * prefix) or a status name and detail to a CallSink.
 */
import * as grpc from '@grpc/grpc-js';
import * as http2 from 'node:http2';

export type TransportKind = 'h2' | 'grpc-js';
export const TRANSPORTS: readonly TransportKind[] = ['h2', 'grpc-js'];

export interface CallSink {
  /** errCode null: success with `resp`; else a gRPC status name (or transport error) and detail. */
  callComplete(errCode: string | null, detail: string, resp: Buffer | null): void;
}

export interface Caller {
  /** Start one call with a request from the pool prepared by the connection. */
  send(request: Buffer): void;
}

export interface Connection {
  /** Resolves once the connection is established. */
  ready(timeoutMs: number): Promise<void>;
  /** Convert encoded messages to the form `send` takes (done once, before the run). */
  prepare(messages: Buffer[]): Buffer[];
  caller(method: string, sink: CallSink): Caller;
  close(): void;
}

export function connect(kind: TransportKind, target: string): Connection {
  return kind === 'h2' ? new H2Connection(target) : new GrpcJsConnection(target);
}

function statusName(code: number): string {
  return grpc.status[code] ?? `STATUS_${code}`;
}

// ---------------------------------------------------------------------------------
// grpc-js

function identity(b: Buffer): Buffer {
  return b;
}

class GrpcJsConnection implements Connection {
  private readonly client: grpc.Client;

  constructor(target: string) {
    this.client = new grpc.Client(target, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1, // one HTTP/2 connection per channel
      'grpc.enable_retries': 0, // no retry buffering: every call is one attempt
      'grpc.max_receive_message_length': -1,
    });
  }

  ready(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve()));
    });
  }

  prepare(messages: Buffer[]): Buffer[] {
    return messages;
  }

  caller(method: string, sink: CallSink): Caller {
    const client = this.client;
    const onResponse = (err: grpc.ServiceError | null, resp?: Buffer): void => {
      if (err !== null) sink.callComplete(statusName(err.code), err.details, null);
      else if (resp === undefined) sink.callComplete('NO_RESPONSE', 'no response message', null);
      else sink.callComplete(null, '', resp);
    };
    return {
      send(request: Buffer): void {
        client.makeUnaryRequest(method, identity, identity, request, onResponse);
      },
    };
  }

  close(): void {
    this.client.close();
  }
}

// ---------------------------------------------------------------------------------
// node:http2 with hand-made gRPC framing

/** gRPC length-prefixed message: 1 byte compressed flag (0), 4 bytes big-endian length. */
const FRAME_PREFIX_BYTES = 5;
/** A call on a closed connection fails after this delay (the connection is not reopened). */
const DEAD_CONNECTION_RETRY_MS = 10;

class H2Connection implements Connection {
  private readonly session: http2.ClientHttp2Session;
  private sessionError: Error | null = null;

  constructor(target: string) {
    this.session = http2.connect(`http://${target}`, { settings: { enablePush: false } });
    this.session.on('error', (e: Error) => {
      this.sessionError = e; // each stream fails on its own and is counted there
    });
  }

  ready(timeoutMs: number): Promise<void> {
    const s = this.session;
    if (s.connecting === false && !s.destroyed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`http2 connect timed out after ${timeoutMs} ms`)), timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      s.once('error', (e: Error) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  prepare(messages: Buffer[]): Buffer[] {
    let total = 0;
    for (const m of messages) total += FRAME_PREFIX_BYTES + m.length;
    const slab = Buffer.allocUnsafe(total);
    const out = new Array<Buffer>(messages.length);
    let off = 0;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      slab[off] = 0;
      slab.writeUInt32BE(m.length, off + 1);
      m.copy(slab, off + FRAME_PREFIX_BYTES);
      out[i] = slab.subarray(off, off + FRAME_PREFIX_BYTES + m.length);
      off += FRAME_PREFIX_BYTES + m.length;
    }
    return out;
  }

  caller(method: string, sink: CallSink): Caller {
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': method,
      'content-type': 'application/grpc',
      te: 'trailers',
    };
    return new H2Caller(this, headers, sink);
  }

  request(headers: http2.OutgoingHttpHeaders): http2.ClientHttp2Stream {
    if (this.sessionError !== null && this.session.destroyed) throw this.sessionError;
    return this.session.request(headers);
  }

  close(): void {
    this.session.destroy();
  }
}

function percentDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** One call at a time; the stream listeners are allocated once per caller, not per call. */
class H2Caller implements Caller {
  private chunks: Buffer[] = [];
  private status: string | null = null;
  private message = '';
  private streamError = '';
  private failure = '';

  private readonly onHeaders = (h: http2.IncomingHttpHeaders): void => this.readStatus(h);
  private readonly onData = (b: Buffer): void => {
    this.chunks.push(b);
  };
  private readonly onError = (e: Error): void => {
    this.streamError = e.message;
  };
  private readonly onClose = (): void => this.finish();
  private readonly onFailLater = (): void => this.sink.callComplete('UNAVAILABLE', this.failure, null);

  constructor(
    private readonly conn: H2Connection,
    private readonly headers: http2.OutgoingHttpHeaders,
    private readonly sink: CallSink,
  ) {}

  send(request: Buffer): void {
    this.chunks.length = 0;
    this.status = null;
    this.message = '';
    this.streamError = '';
    let stream: http2.ClientHttp2Stream;
    try {
      stream = this.conn.request(this.headers);
    } catch (e) {
      // Report later, so a dead connection neither recurses through send() nor spins a core.
      this.failure = e instanceof Error ? e.message : String(e);
      setTimeout(this.onFailLater, DEAD_CONNECTION_RETRY_MS);
      return;
    }
    stream.on('response', this.onHeaders); // Trailers-Only responses carry grpc-status here
    stream.on('trailers', this.onHeaders);
    stream.on('data', this.onData);
    stream.on('error', this.onError);
    stream.on('close', this.onClose);
    stream.end(request);
  }

  private readStatus(h: http2.IncomingHttpHeaders): void {
    const s = h['grpc-status'];
    if (typeof s === 'string') {
      this.status = s;
      const m = h['grpc-message'];
      this.message = typeof m === 'string' ? percentDecode(m) : '';
    }
  }

  private finish(): void {
    if (this.streamError !== '') {
      this.sink.callComplete('STREAM_ERROR', this.streamError, null);
      return;
    }
    if (this.status === null) {
      this.sink.callComplete('NO_STATUS', 'stream closed without grpc-status', null);
      return;
    }
    if (this.status !== '0') {
      this.sink.callComplete(statusName(Number(this.status)), this.message, null);
      return;
    }
    const body = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    if (body.length < FRAME_PREFIX_BYTES || body[0] !== 0) {
      this.sink.callComplete('BAD_FRAME', `response body of ${body.length} bytes is not one uncompressed gRPC message`, null);
      return;
    }
    const len = body.readUInt32BE(1);
    if (body.length !== FRAME_PREFIX_BYTES + len) {
      this.sink.callComplete('BAD_FRAME', `response frame says ${len} bytes, body has ${body.length - FRAME_PREFIX_BYTES}`, null);
      return;
    }
    this.sink.callComplete(null, '', body.subarray(FRAME_PREFIX_BYTES));
  }
}
