import type { MethodDefinition, Server, UntypedServiceImplementation } from '@grpc/grpc-js';
import { status as Status } from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import type { Http2Server, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Logger } from 'pino';
import type { MetadataLike } from './caller';

// The hot methods, served without grpc-js: KV and the unary Lease calls by the client
// port's own HTTP/2 (h2/front.ts, which asks unaryRoute() here), and the Watch and
// LeaseKeepAlive streams (bidi; DirectDuplex) on the node:http2 server behind it, where
// h2/front.ts relays every call it does not serve itself.
//
// grpc-js spends 34-39 µs of CPU on every unary call on this machine (metadata objects,
// interceptor chain, promise-based decompression, per-call listeners), about what etcd
// spends on a whole put. For these methods the request message is read, the same
// instrumented handler grpc-js would run is run, and the response is written here; every
// other method, and any call whose request is compressed, goes to grpc-js. The wire
// contract is grpc-js's own, so a client cannot tell the two apart: the same response
// headers and trailers, `grpc-timeout` deadlines ("Deadline exceeded"), the receive size
// limit ("Received message larger than max (N vs M)", RESOURCE_EXHAUSTED), and its
// statuses for a unary call with no or two request messages. A bidi call gets a
// grpc-js-shaped call object (DirectDuplex): 'data', 'end', 'drain', 'cancelled', 'close'
// events, write() with backpressure, end(), and emit('error', status) to end it with a
// status.
//
// grpc-js offers no public hook for the bidi streams: its connection injector owns an
// http2 server whose 'stream' listener dispatches every call. The listener is taken from
// that server and called for the streams this path does not serve. If a grpc-js upgrade
// moves that server, `attach` returns false and those calls go through grpc-js as before
// (correct, slower); the server logs it and a test fails on it.

type Handler = (call: DirectCall, callback: (err: { code?: number; details?: string } | null, res?: unknown) => void) => void;
/** A bidi handler takes a grpc-js-shaped call object: DirectDuplex here, or h2/front.ts's StreamCall. */
type BidiHandler = (call: EventEmitter) => void;

/** A method served here: exactly one of `unary` and `bidi` is set. */
export interface Route {
  path: string;
  deserialize(b: Buffer): unknown;
  serialize(m: unknown): Buffer;
  unary?: Handler;
  bidi?: BidiHandler;
}

interface GrpcStatus {
  code?: number;
  details?: string;
}

/** What a unary handler sees of a call served here: the request and its metadata. */
export interface DirectCall {
  request: unknown;
  metadata: MetadataLike;
}

/** A unary method: what the client port's own HTTP/2 (h2/front.ts) serves. */
export type UnaryRoute = Route & { unary: Handler };

type StreamListener = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;

export const MESSAGE_PREFIX_BYTES = 5;
const DEADLINE = /^(\d{1,8})\s*([HMSmun])$/;
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
const TAKEN = Symbol('cairn.directCalls');

export class DirectCalls {
  private readonly routes = new Map<string, Route>();
  /** Bidi calls in progress (watch and keep-alive streams), ended at shutdown. */
  private readonly streams = new Set<DirectDuplex>();

  constructor(
    readonly maxReceiveBytes: number,
    private readonly log: Logger,
  ) {}

  /** The method served at `path`, if it is one of these. */
  route(path: string): Route | undefined {
    return this.routes.get(path);
  }

  /** Serves `names` of a service (unary or bidi methods) here; `impl` is the instrumented implementation. */
  add(def: Record<string, MethodDefinition<unknown, unknown>>, impl: UntypedServiceImplementation, names: readonly string[]): void {
    for (const name of names) {
      const d = def[name];
      if (d === undefined || d.requestStream !== d.responseStream) throw new Error(`direct path: ${name} is neither unary nor bidi`);
      const route: Route = { path: d.path, deserialize: d.requestDeserialize, serialize: d.responseSerialize as (m: unknown) => Buffer };
      if (d.requestStream) route.bidi = impl[name] as unknown as BidiHandler;
      else route.unary = impl[name] as unknown as Handler;
      this.routes.set(d.path, route);
    }
  }

  /** Takes over the stream dispatch of the injector's http2 server(s); false if grpc-js's internals are not where expected. */
  attach(grpc: Server): boolean {
    const servers = (grpc as unknown as { http2Servers?: Map<Http2Server, unknown> }).http2Servers;
    if (!(servers instanceof Map)) return this.refuse('grpc-js has no http2Servers map');
    let attached = 0;
    for (const h2 of servers.keys()) {
      const tagged = h2 as Http2Server & { [TAKEN]?: true };
      if (tagged[TAKEN]) continue;
      const listeners = h2.listeners('stream') as StreamListener[];
      if (listeners.length !== 1) return this.refuse(`grpc-js's http2 server has ${listeners.length} stream listeners, expected 1`);
      const grpcStream = listeners[0];
      h2.removeListener('stream', grpcStream);
      h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
        const route = this.routes.get(headers[':path'] as string);
        const encoding = headers['grpc-encoding'];
        const type = headers['content-type'];
        if (route?.bidi === undefined || (encoding !== undefined && encoding !== 'identity') || typeof type !== 'string' || !type.startsWith('application/grpc')) {
          grpcStream(stream, headers, flags, rawHeaders);
          return;
        }
        const call = new DirectDuplex(route, stream, headers, this.maxReceiveBytes);
        this.streams.add(call);
        stream.once('close', () => this.streams.delete(call));
        route.bidi(call);
      });
      tagged[TAKEN] = true;
      attached++;
    }
    if (attached === 0) return this.refuse('grpc-js created no http2 server for the injector');
    this.log.info({ methods: [...this.routes.values()].filter((r) => r.bidi !== undefined).map((r) => r.path) }, 'serving the hot streams on node:http2 directly');
    return true;
  }

  /**
   * Ends every bidi call with `code` (a stopping member: etcd closes its streams at once and
   * clients go elsewhere; otherwise a watch would hold the shutdown for its whole grace).
   */
  endStreams(code: number, details: string): void {
    for (const call of [...this.streams]) call.emit('error', { code, details });
    this.streams.clear();
  }

  private refuse(why: string): false {
    this.log.warn({ why }, 'hot methods go through grpc-js (the direct path could not attach)');
    return false;
  }
}

/** A call's request headers read as gRPC metadata (only what callerOf asks for). */
function headerMetadata(headers: IncomingHttpHeaders): MetadataLike {
  return {
    get(key: string): Array<string | Buffer> {
      const v = headers[key];
      return v === undefined ? [] : Array.isArray(v) ? v : [v];
    },
  };
}

/**
 * A bidi call on a raw HTTP/2 stream, shaped like grpc-js's ServerDuplexStream as far as
 * the handlers use it. Messages are read as they complete (a DATA chunk may hold several
 * or part of one); write() takes a message object or its encoded bytes (a watch batch
 * encoded once for many watchers) and returns false when the stream's buffer is full.
 */
export class DirectDuplex extends EventEmitter {
  readonly metadata: MetadataLike;
  /** write() takes encoded response bytes as well as message objects. */
  readonly acceptsEncoded = true;
  cancelled = false;
  private done = false; // a status was sent, or the stream is gone
  private headersSent = false;
  private pending: Buffer | undefined; // bytes of an incomplete message

  constructor(
    private readonly route: Route,
    private readonly stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    private readonly maxReceiveBytes: number,
  ) {
    super();
    this.metadata = headerMetadata(headers);
    stream.on('error', ignore); // a reset stream also emits 'close'
    // As grpc-js: a handler ends the call with a status by emitting 'error'.
    this.on('error', (e: GrpcStatus) => this.finish(e?.code ?? Status.UNKNOWN, e?.details ?? ''));
    stream.on('data', (chunk: Buffer) => this.onChunk(chunk));
    stream.once('end', () => {
      if (!this.done) this.emit('end');
    });
    stream.on('drain', () => this.emit('drain'));
    stream.once('close', () => {
      if (!this.done) {
        this.done = true;
        this.cancelled = true;
        this.emit('cancelled', 'cancelled');
      }
      this.emit('close');
    });
  }

  write(message: unknown): boolean {
    if (this.done || this.stream.destroyed || this.stream.closed) return false;
    const payload = Buffer.isBuffer(message) ? message : this.route.serialize(message);
    if (!this.headersSent) {
      this.headersSent = true;
      respondHeaders(this.stream);
    }
    return this.stream.write(frameMessage(payload));
  }

  end(): void {
    this.finish(Status.OK, '');
  }

  private finish(code: number, details: string): void {
    if (this.done) return;
    this.done = true;
    const stream = this.stream;
    if (!stream.destroyed && !stream.closed) {
      if (!this.headersSent) respondStatus(stream, code, details);
      else endWithStatus(stream, code, details);
    }
    this.emit('finish');
  }

  private onChunk(chunk: Buffer): void {
    if (this.done) return;
    let buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    while (buf.length >= MESSAGE_PREFIX_BYTES) {
      const len = buf.readUInt32BE(1);
      if (len > this.maxReceiveBytes) {
        this.finish(Status.RESOURCE_EXHAUSTED, tooLarge(len, this.maxReceiveBytes));
        return;
      }
      if (buf.length < MESSAGE_PREFIX_BYTES + len) break;
      const decoded = decodeRequest(this.route, buf.subarray(0, MESSAGE_PREFIX_BYTES + len));
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
}

function ignore(): void {}

/** A `grpc-timeout` value in milliseconds, or undefined when it is not one. */
export function deadlineMs(timeout: string): number | undefined {
  const m = DEADLINE.exec(timeout);
  return m === null ? undefined : (Number(m[1]) * UNIT_MS[m[2]]) | 0;
}

/** grpc-js's words for a message over the receive limit. */
export function tooLarge(length: number, max: number): string {
  return `Received message larger than max (${length} vs ${max})`;
}

/** One whole prefixed message (flag, length, body) decoded, or the status that refuses it. */
export function decodeRequest(route: Route, framed: Buffer): { message: unknown; failed?: undefined } | { failed: Required<GrpcStatus> } {
  // Only identity-encoded calls come here (see attach), so a compressed flag is a lie.
  if (framed[0] !== 0) return { failed: { code: Status.INTERNAL, details: 'Received compressed message but "grpc-encoding" header was identity' } };
  try {
    return { message: route.deserialize(framed.subarray(MESSAGE_PREFIX_BYTES)) };
  } catch {
    return { failed: { code: Status.INTERNAL, details: 'Error deserializing request' } };
  }
}

/** Ends a stream whose headers are out: `last` (if any), then the status as trailers. */
function endWithStatus(stream: ServerHttp2Stream, code: number, details: string, last?: Buffer): void {
  // The usual answer shares one listener and one trailers object (node copies it); only
  // an error status needs a closure for its words.
  if (code === Status.OK && details === '') stream.once('wantTrailers', sendOkTrailers);
  else stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': String(code), 'grpc-message': encodeURI(details) }));
  if (last === undefined) stream.end();
  else stream.end(last);
}

const OK_TRAILERS = Object.freeze({ 'grpc-status': String(Status.OK), 'grpc-message': '' });

function sendOkTrailers(this: ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

export function frameMessage(payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(MESSAGE_PREFIX_BYTES + payload.length);
  frame[0] = 0;
  frame.writeUInt32BE(payload.length, 1);
  payload.copy(frame, MESSAGE_PREFIX_BYTES);
  return frame;
}

/** The response headers grpc-js sends before the first message (node copies both objects). */
const RESPONSE_HEADERS = Object.freeze({ ':status': 200, 'content-type': 'application/grpc+proto', 'grpc-accept-encoding': 'identity,deflate,gzip', 'grpc-encoding': 'identity' });
const RESPONSE_OPTIONS = Object.freeze({ waitForTrailers: true });

function respondHeaders(stream: ServerHttp2Stream): void {
  stream.respond(RESPONSE_HEADERS, RESPONSE_OPTIONS);
}

/** A status without messages: grpc-js's trailers-only answer. */
function respondStatus(stream: ServerHttp2Stream, code: number, details: string): void {
  stream.respond(
    { ':status': 200, 'content-type': 'application/grpc+proto', 'grpc-status': String(code), 'grpc-message': encodeURI(details) },
    { endStream: true },
  );
}
