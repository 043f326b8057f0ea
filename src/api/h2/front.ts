import { status as Status } from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import { connect, constants as h2c, type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { MetadataLike } from '../caller';
import { decodeRequest, deadlineMs, frameMessage, tooLarge, type DirectCalls, type Route, type UnaryRoute, MESSAGE_PREFIX_BYTES } from '../direct';
import { ErrorCode, H2Connection, type H2Stream, type StreamHandler } from './connection';
import { encodeHeaders } from './hpack';

// The client port's HTTP/2 (connection.ts) and what it does with each call: the hot
// methods (KV, the unary Lease calls, and the Watch and LeaseKeepAlive streams) are served
// here, on the handlers grpc-js would run; every other call, and any compressed one, is
// relayed stream for stream to the grpc-js server over an internal connection of its own
// per client connection. Relayed calls keep every grpc-js behaviour (compression, server
// streaming, all statuses); they pay a second HTTP/2 hop.
//
// The wire contract of a served call is grpc-js's, as in direct.ts: the same response
// headers and trailers, deadlines, size limit and unary-call statuses.

/** The response headers and OK trailers of every call: constant blocks of each connection (indexed after their first use). */
const CONSTANT_BLOCKS = [
  [
    [':status', '200'],
    ['content-type', 'application/grpc+proto'],
    ['grpc-accept-encoding', 'identity,deflate,gzip'],
    ['grpc-encoding', 'identity'],
  ],
  [
    ['grpc-status', '0'],
    ['grpc-message', ''],
  ],
] as const;
const RESPONSE_HEADERS = 0;
const OK_TRAILERS = 1;

/** Ends a stream whose response headers are out, with trailers for `code`. */
function sendTrailers(s: H2Stream, code: number, details: string): void {
  if (code === Status.OK && details === '') s.constantHeaders(OK_TRAILERS, true);
  else
    s.headers(
      encodeHeaders([
        ['grpc-status', String(code)],
        ['grpc-message', encodeURI(details)],
      ]),
      true,
    );
}

function statusOnly(code: number, details: string): Buffer {
  return encodeHeaders([
    [':status', '200'],
    ['content-type', 'application/grpc+proto'],
    ['grpc-status', String(code)],
    ['grpc-message', encodeURI(details)],
  ]);
}

/** Request headers a relay does not pass on: HTTP/2 connection-specific, or set by node itself. */
const NOT_RELAYED = new Set([':authority', ':scheme', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings']);

export interface FrontOptions {
  direct: DirectCalls;
  maxConcurrentStreams: number;
  /** Opens a connection to the grpc-js server for relayed calls. */
  internal(): Duplex;
  log: Logger;
}

export class ClientFront {
  private readonly conns = new Set<H2Connection>();
  /** Bidi calls in progress (watch and keep-alive streams), ended at shutdown. */
  private readonly streams = new Set<StreamCall>();

  constructor(private readonly opts: FrontOptions) {}

  /** Takes over a client connection whose first bytes (`seen`) are the HTTP/2 preface. */
  serve(socket: Duplex, seen: Buffer, certName?: { name: string; value: string }): void {
    const relay = new Relay(this.opts, certName);
    const conn = new H2Connection(
      socket,
      {
        maxConcurrentStreams: this.opts.maxConcurrentStreams,
        constantBlocks: CONSTANT_BLOCKS,
        onStream: (s) => this.route(s, relay, certName),
        onClose: (c) => {
          this.conns.delete(c);
          relay.close();
        },
        onError: (e) => this.opts.log.error({ err: e }, 'client connection failed: closing it'),
      },
      seen,
    );
    if (!conn.closed) this.conns.add(conn);
  }

  /** Stops taking calls: GOAWAY on every connection, closing each when its calls are done (or now, with force). */
  close(force: boolean): void {
    for (const c of [...this.conns]) c.goAway(force);
  }

  /** Ends every bidi call with `code` (a stopping member: clients move to another one at once). */
  endStreams(code: number, details: string): void {
    for (const call of [...this.streams]) call.emit('error', { code, details });
    this.streams.clear();
  }

  private route(s: H2Stream, relay: Relay, certName: { name: string; value: string } | undefined): void {
    const path = s.header(':path');
    const type = s.header('content-type');
    const encoding = s.header('grpc-encoding');
    const route = path === undefined ? undefined : this.opts.direct.route(path);
    if (
      route === undefined ||
      s.header(':method') !== 'POST' ||
      (encoding !== undefined && encoding !== 'identity') ||
      type === undefined ||
      !type.startsWith('application/grpc')
    ) {
      relay.open(s);
      return;
    }
    if (route.bidi !== undefined) {
      const call = new StreamCall(s, route, this.opts.direct.maxReceiveBytes, metadataOf(s, certName));
      this.streams.add(call);
      call.once('close', () => this.streams.delete(call));
      route.bidi(call);
      return;
    }
    s.handler = new UnaryCall(s, route as UnaryRoute, this.opts.direct.maxReceiveBytes, certName);
  }
}

/** A call's request headers as gRPC metadata; the verified certificate's name replaces any copy the client sent. */
function metadataOf(s: H2Stream, cert: { name: string; value: string } | undefined): MetadataLike {
  return {
    get(key: string): Array<string | Buffer> {
      if (cert !== undefined && key === cert.name) return [cert.value];
      const out: string[] = [];
      const f = s.fields;
      for (let i = 0; i < f.length; i += 2) if (f[i] === key) out.push(f[i + 1]);
      return out;
    },
  };
}

/**
 * A bidi call served here (Watch, LeaseKeepAlive), shaped like grpc-js's ServerDuplexStream
 * as far as the handlers use it: 'data', 'end', 'drain',
 * 'cancelled', 'close' and 'finish' events, write() of a message or its encoded bytes with
 * back-pressure (false while the client's flow-control window is used up), end(), and
 * emit('error', status) to end it with a status.
 */
class StreamCall extends EventEmitter implements StreamHandler {
  readonly acceptsEncoded = true;
  cancelled = false;
  private done = false; // a status was sent, or the stream is gone
  private closeEmitted = false;
  private headersSent = false;
  private pending: Buffer | undefined; // bytes of an incomplete message

  constructor(
    private readonly stream: H2Stream,
    private readonly route: Route,
    private readonly maxReceiveBytes: number,
    readonly metadata: MetadataLike,
  ) {
    super();
    stream.handler = this;
    this.on('error', (e: { code?: number; details?: string }) => this.finish(e?.code ?? Status.UNKNOWN, e?.details ?? ''));
  }

  write(message: unknown): boolean {
    if (this.done || this.stream.closed) return false;
    const payload = Buffer.isBuffer(message) ? message : this.route.serialize(message);
    if (!this.headersSent) {
      this.headersSent = true;
      this.stream.constantHeaders(RESPONSE_HEADERS, false);
    }
    return this.stream.data(frameMessage(payload));
  }

  end(): void {
    this.finish(Status.OK, '');
  }

  onData(_s: H2Stream, chunk: Buffer): void {
    this.stream.consumed(chunk.length);
    if (this.done) return;
    let buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    while (buf.length >= MESSAGE_PREFIX_BYTES) {
      const len = buf.readUInt32BE(1);
      if (len > this.maxReceiveBytes) {
        this.finish(Status.RESOURCE_EXHAUSTED, tooLarge(len, this.maxReceiveBytes));
        return;
      }
      if (buf.length < MESSAGE_PREFIX_BYTES + len) break;
      // A copy: the message's bytes may outlive this read (a watch key, a lease id).
      const decoded = decodeRequest(this.route, Buffer.from(buf.subarray(0, MESSAGE_PREFIX_BYTES + len)));
      if (decoded.failed !== undefined) {
        this.finish(decoded.failed.code, decoded.failed.details);
        return;
      }
      buf = buf.subarray(MESSAGE_PREFIX_BYTES + len);
      this.emit('data', decoded.message);
      if (this.done) return;
    }
    this.pending = buf.length > 0 ? Buffer.from(buf) : undefined;
  }

  onEnd(): void {
    if (!this.done) this.emit('end');
  }

  onDrain(): void {
    this.emit('drain');
  }

  onAbort(): void {
    if (!this.done) {
      this.done = true;
      this.cancelled = true;
      this.emit('cancelled', 'cancelled');
    }
    this.emitClose();
  }

  onClose(): void {
    this.emitClose();
  }

  private emitClose(): void {
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    this.emit('close');
  }

  private finish(code: number, details: string): void {
    if (this.done) return;
    this.done = true;
    const s = this.stream;
    if (!s.closed) {
      if (!this.headersSent) s.headers(statusOnly(code, details), true);
      else sendTrailers(s, code, details);
    }
    this.emit('finish');
  }
}

/** A unary call served here: the request message in, one answer out. */
class UnaryCall implements StreamHandler {
  private ended = false; // an answer was sent, or the stream is gone
  private chunks: Buffer[] = [];
  private total = 0;
  private length = -1; // the message's length, once its prefix is in
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: H2Stream,
    private readonly route: UnaryRoute,
    private readonly maxReceiveBytes: number,
    private readonly certName: { name: string; value: string } | undefined,
  ) {
    const timeout = stream.header('grpc-timeout');
    if (timeout !== undefined) {
      const ms = deadlineMs(timeout);
      if (ms === undefined) {
        this.fail(Status.INTERNAL, `Invalid grpc-timeout value "${timeout}"`);
        return;
      }
      this.timer = setTimeout(() => this.fail(Status.DEADLINE_EXCEEDED, 'Deadline exceeded'), ms);
    }
  }

  onData(_s: H2Stream, chunk: Buffer): void {
    this.stream.consumed(chunk.length);
    if (this.ended) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
    if (this.length < 0 && this.total >= MESSAGE_PREFIX_BYTES) {
      const head = this.chunks[0].length >= MESSAGE_PREFIX_BYTES ? this.chunks[0] : Buffer.concat(this.chunks);
      this.length = head.readUInt32BE(1);
      if (this.length > this.maxReceiveBytes) {
        this.fail(Status.RESOURCE_EXHAUSTED, tooLarge(this.length, this.maxReceiveBytes));
        return;
      }
    }
    if (this.length >= 0 && this.total > MESSAGE_PREFIX_BYTES + this.length) {
      this.fail(Status.UNIMPLEMENTED, `Received a second request message for server unary RPC ${this.route.path}`);
    }
  }

  onEnd(): void {
    if (this.ended) return;
    if (this.length < 0 || this.total < MESSAGE_PREFIX_BYTES + this.length) {
      this.fail(Status.UNIMPLEMENTED, `Received no request message for unary RPC ${this.route.path}`);
      return;
    }
    // The DATA payloads view the connection's read buffer: a request kept by the handler
    // (as a proposal's) must own its bytes.
    const framed = Buffer.concat(this.chunks, this.total);
    this.chunks = [];
    const decoded = decodeRequest(this.route, framed);
    if (decoded.failed !== undefined) {
      this.fail(decoded.failed.code, decoded.failed.details);
      return;
    }
    this.route.unary({ request: decoded.message, metadata: metadataOf(this.stream, this.certName) }, (err, res) => {
      if (err) this.fail(err.code ?? Status.UNKNOWN, err.details ?? '');
      else this.reply(res);
    });
  }

  onAbort(): void {
    this.settle();
  }

  private settle(): void {
    this.ended = true;
    this.chunks = [];
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private fail(code: number, details: string): void {
    if (this.ended) return;
    this.settle();
    const s = this.stream;
    if (s.closed) return;
    s.headers(statusOnly(code, details), true);
  }

  private reply(response: unknown): void {
    if (this.ended) return;
    let payload: Buffer;
    try {
      payload = this.route.serialize(response);
    } catch {
      this.fail(Status.INTERNAL, 'Error serializing response');
      return;
    }
    this.settle();
    const s = this.stream;
    if (s.closed) return;
    s.constantHeaders(RESPONSE_HEADERS, false);
    s.data(frameMessage(payload));
    s.constantHeaders(OK_TRAILERS, true);
  }
}

/** Relays a client connection's other calls to the grpc-js server, one internal connection per client connection. */
class Relay {
  private session: ClientHttp2Session | undefined;
  private readonly calls = new Set<RelayedCall>();
  private closed = false;

  constructor(
    private readonly opts: FrontOptions,
    private readonly certName: { name: string; value: string } | undefined,
  ) {}

  open(s: H2Stream): void {
    if (this.closed) {
      s.reset(ErrorCode.REFUSED_STREAM);
      return;
    }
    if (this.session === undefined || this.session.destroyed || this.session.closed) {
      const session = connect('http://cairn.internal', { createConnection: () => this.opts.internal() as never, maxSessionMemory: 64 });
      session.on('error', (e) => this.opts.log.debug({ err: e }, 'internal relay connection failed'));
      session.on('close', () => {
        if (this.session === session) this.session = undefined;
        for (const c of [...this.calls]) c.abort(ErrorCode.INTERNAL_ERROR);
      });
      this.session = session;
    }
    const headers: OutgoingHttpHeaders = {};
    const f = s.fields;
    for (let i = 0; i < f.length; i += 2) {
      const name = f[i];
      if (NOT_RELAYED.has(name) || (this.certName !== undefined && name === this.certName.name)) continue;
      const prev = headers[name];
      headers[name] = prev === undefined ? f[i + 1] : Array.isArray(prev) ? [...prev, f[i + 1]] : [String(prev), f[i + 1]];
    }
    if (this.certName !== undefined) headers[this.certName.name] = this.certName.value;
    let req: ClientHttp2Stream;
    try {
      req = this.session.request(headers, { endStream: false });
    } catch (e) {
      this.opts.log.debug({ err: e }, 'internal relay refused a call');
      s.reset(ErrorCode.REFUSED_STREAM);
      return;
    }
    const call = new RelayedCall(s, req, () => this.calls.delete(call));
    this.calls.add(call);
  }

  close(): void {
    this.closed = true;
    for (const c of [...this.calls]) c.abort(ErrorCode.CANCEL);
    this.session?.destroy();
    this.session = undefined;
  }
}

/** One relayed call: client stream <-> internal stream, both directions, with back-pressure. */
class RelayedCall implements StreamHandler {
  private done = false;
  /** Response bytes that came before node emitted the response headers (it emits 'response' a tick late). */
  private early: Buffer[] | undefined = [];

  constructor(
    private readonly s: H2Stream,
    private readonly req: ClientHttp2Stream,
    private readonly onDone: () => void,
  ) {
    s.handler = this;
    req.on('response', (headers, flags) => {
      if (s.closed) return;
      const end = (flags & h2c.NGHTTP2_FLAG_END_STREAM) !== 0;
      if (!this.sendHeaders(headers, end)) return;
      const early = this.early!;
      this.early = undefined;
      for (const chunk of early) this.forward(chunk);
      if (end) this.finish();
    });
    req.on('data', (chunk: Buffer) => {
      if (this.early !== undefined) this.early.push(chunk);
      else this.forward(chunk);
    });
    // Node emits 'trailers' when they arrive, which can be before a paused stream handed
    // out all its data: they go out at 'end', after the last byte.
    let trailers: Record<string, unknown> | undefined;
    req.on('trailers', (t) => (trailers = t));
    req.on('end', () => {
      if (!s.closed && !s.localEnded && this.early === undefined) {
        if (trailers !== undefined) this.sendHeaders(trailers, true);
        else s.endData();
      }
      this.finish();
    });
    req.on('error', () => undefined); // 'close' follows
    req.on('close', () => {
      if (!this.done && !s.closed && !s.localEnded) s.reset(req.rstCode && req.rstCode !== h2c.NGHTTP2_NO_ERROR ? req.rstCode : ErrorCode.INTERNAL_ERROR);
      this.finish();
    });
  }

  /** Passes a header block on; false (and the call reset) when it cannot be encoded. */
  private sendHeaders(headers: Record<string, unknown>, end: boolean): boolean {
    let block: Buffer;
    try {
      block = encodeHeaders(headerPairs(headers));
    } catch {
      this.abort(ErrorCode.INTERNAL_ERROR);
      return false;
    }
    this.s.headers(block, end);
    return true;
  }

  private forward(chunk: Buffer): void {
    if (this.s.closed) return;
    if (!this.s.data(chunk)) this.req.pause(); // resumed on drain
  }

  onData(_s: H2Stream, chunk: Buffer): void {
    // The client's window is given back when the internal stream took the bytes.
    const n = chunk.length;
    this.req.write(Buffer.from(chunk), () => this.s.consumed(n));
  }

  onEnd(): void {
    this.req.end();
  }

  onAbort(_s: H2Stream, code: number): void {
    this.abort(code === ErrorCode.NO_ERROR ? ErrorCode.CANCEL : code);
  }

  onDrain(): void {
    this.req.resume();
  }

  abort(code: number): void {
    if (this.done) return;
    this.done = true;
    this.onDone();
    if (!this.s.closed) this.s.reset(code);
    if (!this.req.closed && !this.req.destroyed) this.req.close(h2c.NGHTTP2_CANCEL);
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.onDone();
  }
}

/** A node header object as name/value pairs for encodeHeaders (pseudo headers first, as HTTP/2 requires). */
function headerPairs(headers: Record<string, unknown>): Array<[string, string]> {
  const pseudo: Array<[string, string]> = [];
  const rest: Array<[string, string]> = [];
  for (const name of Object.keys(headers)) {
    const v = headers[name];
    if (v === undefined) continue;
    const into = name.startsWith(':') ? pseudo : rest;
    if (Array.isArray(v)) for (const x of v) into.push([name, String(x)]);
    else into.push([name, String(v)]);
  }
  return pseudo.concat(rest);
}

/** Two connected in-memory byte streams: what one writes, the other reads. */
export function duplexPair(): [Duplex, Duplex] {
  const make = (peer: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        peer().push(chunk);
        cb();
      },
      final(cb) {
        peer().push(null);
        cb();
      },
      destroy(err, cb) {
        const p = peer();
        if (!p.destroyed) p.destroy();
        cb(err);
      },
    });
  const a: Duplex = make(() => b);
  const b: Duplex = make(() => a);
  return [a, b];
}
