import type { MethodDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { status as Status } from '@grpc/grpc-js';
import type { EventEmitter } from 'node:events';
import type { MetadataLike } from './caller';

// The hot methods, served without grpc-js by the client port's own HTTP/2 (h2/front.ts):
// KV and the unary Lease calls, and the Watch and LeaseKeepAlive streams. This is their
// table (the instrumented handlers grpc-js would run) and the gRPC message framing they
// share; every other method, and any call whose request is compressed, goes to grpc-js.
//
// grpc-js spends 34-39 µs of CPU on every unary call on this machine (metadata objects,
// interceptor chain, promise-based decompression, per-call listeners), about what etcd
// spends on a whole put. The wire contract is grpc-js's own, so a client cannot tell the
// two apart: the same response headers and trailers, `grpc-timeout` deadlines ("Deadline
// exceeded"), the receive size limit ("Received message larger than max (N vs M)",
// RESOURCE_EXHAUSTED), and its statuses for a unary call with no or two request messages.

type Handler = (call: DirectCall, callback: (err: { code?: number; details?: string } | null, res?: unknown) => void) => void;
/** A bidi handler takes a grpc-js-shaped call object (h2/front.ts's StreamCall). */
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

export const MESSAGE_PREFIX_BYTES = 5;
const DEADLINE = /^(\d{1,8})\s*([HMSmun])$/;
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

export class DirectCalls {
  private readonly routes = new Map<string, Route>();

  constructor(readonly maxReceiveBytes: number) {}

  /** The paths served here. */
  get paths(): string[] {
    return [...this.routes.keys()];
  }

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
}

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
  // Only identity-encoded calls come here (h2/front.ts relays the others), so a compressed flag is a lie.
  if (framed[0] !== 0) return { failed: { code: Status.INTERNAL, details: 'Received compressed message but "grpc-encoding" header was identity' } };
  try {
    return { message: route.deserialize(framed.subarray(MESSAGE_PREFIX_BYTES)) };
  } catch {
    return { failed: { code: Status.INTERNAL, details: 'Error deserializing request' } };
  }
}

export function frameMessage(payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(MESSAGE_PREFIX_BYTES + payload.length);
  frame[0] = 0;
  frame.writeUInt32BE(payload.length, 1);
  payload.copy(frame, MESSAGE_PREFIX_BYTES);
  return frame;
}
