import Long from 'long';
import { mvccpb } from '../gen/proto';
import { KeyValue } from '../mvcc/types';

// Conversions between the store's types and the wire's. int64 fields arrive as Long; the
// store keeps revisions as numbers (safe below 2^53) and IDs as bigint (full uint64).

export function toNumber(v: Long | number | null | undefined): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  if (v.high === 0 && v.low >= 0) return v.low;
  const n = v.toNumber();
  if (!Number.isSafeInteger(n)) return v.isNegative() ? Number.MIN_SAFE_INTEGER : Number.MAX_SAFE_INTEGER;
  return n;
}

export function toBigInt(v: Long | number | null | undefined, unsigned = false): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === 'number') return v === 0 ? 0n : BigInt(v);
  // A decoded message's unset int64 field is a zero Long (most puts carry no lease): no BigInt arithmetic for it.
  if (v.high === 0 && v.low === 0) return 0n;
  const big = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return unsigned || v.unsigned ? big : BigInt.asIntN(64, big);
}

/** A uint64 for the wire, without passing through a lossy JS number. */
export function uint64(v: bigint): Long {
  return Long.fromBits(Number(v & 0xffffffffn), Number((v >> 32n) & 0xffffffffn), true);
}

/** An int64 for the wire; small values stay plain numbers (cheaper to encode). */
export function int64(v: bigint): Long | number {
  if (v >= -0x1fffffffffffffn && v <= 0x1fffffffffffffn) return Number(v);
  return Long.fromBits(Number(v & 0xffffffffn), Number((v >> 32n) & 0xffffffffn), false);
}

export function kvToWire(kv: KeyValue, keysOnly = false): mvccpb.IKeyValue {
  return {
    key: kv.key,
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    value: keysOnly ? undefined : kv.value,
    lease: kv.lease === 0n ? 0 : int64(kv.lease),
  };
}

export const EMPTY_BYTES = Buffer.alloc(0);

/** protobufjs hands out Uint8Arrays that are Buffers in Node; make sure of it without copying. */
export function asBuffer(b: Uint8Array | null | undefined): Buffer {
  if (b === null || b === undefined) return EMPTY_BYTES;
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}
