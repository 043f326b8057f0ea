/**
 * A raw gRPC client for etcd's KV service: requests are encoded with the generated
 * protobuf types (or sent as arbitrary bytes), responses decoded the same way, and errors
 * come back as plain status values, so tests can assert exact codes and messages and can
 * send the identical request to cairn and to a real etcd.
 */
import * as grpc from '@grpc/grpc-js';
import { etcdserverpb } from '../../src/gen/proto';

const pb = etcdserverpb;

export type KvMethod = 'Range' | 'Put' | 'DeleteRange' | 'Txn' | 'Compact';

interface Codec {
  encode(m: never): { finish(): Uint8Array };
  decode(b: Uint8Array): unknown;
}

const CODECS: Record<KvMethod, { req: Codec; res: Codec }> = {
  Range: { req: pb.RangeRequest as unknown as Codec, res: pb.RangeResponse as unknown as Codec },
  Put: { req: pb.PutRequest as unknown as Codec, res: pb.PutResponse as unknown as Codec },
  DeleteRange: { req: pb.DeleteRangeRequest as unknown as Codec, res: pb.DeleteRangeResponse as unknown as Codec },
  Txn: { req: pb.TxnRequest as unknown as Codec, res: pb.TxnResponse as unknown as Codec },
  Compact: { req: pb.CompactionRequest as unknown as Codec, res: pb.CompactionResponse as unknown as Codec },
};

export interface RawOk {
  ok: true;
  bytes: Buffer;
}
export interface RawErr {
  ok: false;
  code: number;
  details: string;
}
export type RawResult = RawOk | RawErr;

export type CallResult<T> = { ok: true; resp: T } | RawErr;

export class GrpcCallError extends Error {
  constructor(readonly code: number, readonly details: string, readonly method: string) {
    super(`${method}: gRPC status ${code}: ${details}`);
  }
}

const identity = (b: Buffer): Buffer => b;

export class RawKV {
  readonly client: grpc.Client;

  constructor(endpoint: string) {
    const target = endpoint.replace(/^https?:\/\//, '');
    this.client = new grpc.Client(target, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': -1,
      'grpc.max_receive_message_length': -1,
    });
  }

  /** Sends arbitrary bytes to /etcdserverpb.KV/<method>. Never rejects. */
  raw(method: string, body: Buffer, deadlineMs = 10_000): Promise<RawResult> {
    const path = method.startsWith('/') ? method : `/etcdserverpb.KV/${method}`;
    return new Promise((resolve) => {
      this.client.makeUnaryRequest<Buffer, Buffer>(
        path,
        identity,
        identity,
        body,
        new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (err, value) => {
          if (err) resolve({ ok: false, code: err.code ?? -1, details: err.details ?? err.message });
          else resolve({ ok: true, bytes: value ?? Buffer.alloc(0) });
        },
      );
    });
  }

  /** Encodes req, sends it, decodes the response; errors as values. */
  async tryCall<M extends KvMethod>(method: M, req: ReqOf<M>, deadlineMs = 10_000): Promise<CallResult<ResOf<M>>> {
    const c = CODECS[method];
    const bytes = Buffer.from(c.req.encode(req as never).finish());
    const r = await this.raw(method, bytes, deadlineMs);
    if (!r.ok) return r;
    return { ok: true, resp: c.res.decode(r.bytes) as ResOf<M> };
  }

  /** Like tryCall, but rejects with a GrpcCallError on a non-OK status. */
  async call<M extends KvMethod>(method: M, req: ReqOf<M>, deadlineMs = 10_000): Promise<ResOf<M>> {
    const r = await this.tryCall(method, req, deadlineMs);
    if (!r.ok) throw new GrpcCallError(r.code, r.details, method);
    return r.resp;
  }

  close(): void {
    this.client.close();
  }
}

export type ReqOf<M extends KvMethod> = M extends 'Range'
  ? etcdserverpb.IRangeRequest
  : M extends 'Put'
    ? etcdserverpb.IPutRequest
    : M extends 'DeleteRange'
      ? etcdserverpb.IDeleteRangeRequest
      : M extends 'Txn'
        ? etcdserverpb.ITxnRequest
        : etcdserverpb.ICompactionRequest;

export type ResOf<M extends KvMethod> = M extends 'Range'
  ? etcdserverpb.RangeResponse
  : M extends 'Put'
    ? etcdserverpb.PutResponse
    : M extends 'DeleteRange'
      ? etcdserverpb.DeleteRangeResponse
      : M extends 'Txn'
        ? etcdserverpb.TxnResponse
        : etcdserverpb.CompactionResponse;

/** A number from a protobufjs int64 field (Long, number or string). */
export function num(v: unknown): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  if (typeof v === 'object' && 'toNumber' in (v as object)) return (v as { toNumber(): number }).toNumber();
  return Number(v);
}

export const b = (s: string): Buffer => Buffer.from(s, 'utf8');

/** The key just after every key with this prefix (etcd's GetPrefixRangeEnd). */
export function prefixEnd(prefix: Buffer | string): Buffer {
  const p = Buffer.from(prefix);
  for (let i = p.length - 1; i >= 0; i--) {
    if (p[i] < 0xff) {
      const end = Buffer.from(p.subarray(0, i + 1));
      end[i]++;
      return end;
    }
  }
  return Buffer.from([0]);
}

const HEADER_IDS = new Set(['clusterId', 'memberId', 'raftTerm', 'cluster_id', 'member_id', 'raft_term']);

function isLong(v: unknown): v is { low: number; high: number; unsigned: boolean; toString(): string } {
  return typeof v === 'object' && v !== null && 'low' in v && 'high' in v && 'unsigned' in v;
}

/**
 * A comparable plain value of a decoded protobuf message: int64 as decimal strings, bytes
 * as "hex:...", proto3 defaults (0, false, "", empty bytes/lists, absent) dropped so that
 * "absent" and "explicit default" compare equal (they are the same on the wire), and the
 * response header's cluster_id / member_id / raft_term removed.
 */
export function normalize(v: unknown): unknown {
  if (v === null || v === undefined) return undefined;
  if (isLong(v)) {
    const s = v.toString();
    return s === '0' ? undefined : s;
  }
  if (typeof v === 'number') return v === 0 ? undefined : String(v);
  if (typeof v === 'string') return v === '' ? undefined : v;
  if (typeof v === 'boolean') return v ? true : undefined;
  if (v instanceof Uint8Array) return v.length === 0 ? undefined : 'hex:' + Buffer.from(v).toString('hex');
  if (Array.isArray(v)) {
    const out = v.map((x) => normalize(x) ?? {});
    return out.length === 0 ? undefined : out;
  }
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) {
      if (HEADER_IDS.has(k)) continue;
      const n = normalize((v as Record<string, unknown>)[k]);
      if (n !== undefined) out[k] = n;
    }
    return out;
  }
  return v;
}

/** A Buffer view of an optional protobuf bytes field. */
export function bytes(u: Uint8Array | null | undefined): Buffer {
  return u ? Buffer.from(u.buffer, u.byteOffset, u.byteLength) : Buffer.alloc(0);
}
