import Long from 'long';
import type { etcdserverpb, mvccpb } from '../gen/proto';

// Conversions between the wire types (protobufjs: int64 as Long, bytes as Uint8Array)
// and the client's types: revisions as numbers (asserted safe), IDs as bigint, bytes as
// Buffer. No value passes through a lossy JS number.

export type KeyLike = string | Buffer | Uint8Array;

export function toBuf(k: KeyLike): Buffer {
  if (typeof k === 'string') return Buffer.from(k, 'utf8');
  if (Buffer.isBuffer(k)) return k;
  return Buffer.from(k.buffer, k.byteOffset, k.byteLength);
}

export function bufOf(u: Uint8Array | null | undefined): Buffer {
  if (u === null || u === undefined) return Buffer.alloc(0);
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

type WireInt = number | Long | null | undefined;

/** int64 on the wire -> number; throws if the value does not fit a double exactly. */
export function num(v: WireInt): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  const n = v.toNumber();
  if (!Number.isSafeInteger(n)) throw new RangeError(`cairn client: integer ${v.toString()} is beyond 2^53`);
  return n;
}

/** int64 (signed) on the wire -> bigint. */
export function big(v: WireInt): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === 'number') return BigInt(v);
  return BigInt(v.toString());
}

/** uint64 on the wire -> bigint (a Long decoded as signed is reinterpreted as unsigned). */
export function ubig(v: WireInt): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === 'number') return BigInt.asUintN(64, BigInt(v));
  return BigInt.asUintN(64, BigInt(v.toString()));
}

/** bigint / number -> Long for an int64 field. */
export function toLong(v: bigint | number): Long {
  return Long.fromString(BigInt.asIntN(64, BigInt(v)).toString(), false);
}

/** bigint / number -> Long for a uint64 field. */
export function toULong(v: bigint | number): Long {
  return Long.fromString(BigInt.asUintN(64, BigInt(v)).toString(), true);
}

/** The smallest key greater than every key with this prefix (etcd's GetPrefixRangeEnd). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  // All 0xff (or empty): every key from the prefix on.
  return Buffer.from([0]);
}

export interface ResponseHeader {
  clusterId: bigint;
  memberId: bigint;
  revision: number;
  raftTerm: bigint;
}

export function header(h: etcdserverpb.ResponseHeader.$Properties | null | undefined): ResponseHeader {
  return {
    clusterId: ubig(h?.clusterId),
    memberId: ubig(h?.memberId),
    revision: num(h?.revision),
    raftTerm: ubig(h?.raftTerm),
  };
}

/** One key-value pair at some revision. */
export class KeyValue {
  constructor(
    readonly key: Buffer,
    readonly value: Buffer,
    readonly createRevision: number,
    readonly modRevision: number,
    readonly version: number,
    /** The lease attached to the key, 0n if none. */
    readonly lease: bigint,
  ) {}

  static fromWire(kv: mvccpb.KeyValue.$Properties): KeyValue {
    return new KeyValue(bufOf(kv.key), bufOf(kv.value), num(kv.createRevision), num(kv.modRevision), num(kv.version), big(kv.lease));
  }

  /** The key as UTF-8 text. */
  keyString(): string {
    return this.key.toString('utf8');
  }

  /** The value as UTF-8 text. */
  valueString(): string {
    return this.value.toString('utf8');
  }
}
