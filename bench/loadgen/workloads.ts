/**
 * The workload table. A workload is one gRPC unary method, a pool of requests encoded
 * once before the run (request i addresses key i of the key space), a cheap response
 * check for every call and a full decode of a few responses.
 *
 * To add a workload (txn-put, range-prefix, lease-grant, ...), add an entry to WORKLOADS;
 * the load generator and the runner pick it up by name. Streaming workloads (watch-fanout,
 * lease-keepalive) are listed in STREAM_WORKLOADS and driven by stream-driver.ts.
 */
import { etcdserverpb } from '../../src/gen/proto';
import { scanField } from './proto-scan';

export type KeyOrder = 'seq' | 'random';

export interface KeyOptions {
  /** Bytes per key (decimal index, zero-padded). */
  keySize: number;
  /** Bytes per value. */
  valSize: number;
  /** Number of distinct keys; request i uses key i. */
  keySpace: number;
  /** Order in which a client walks the key space. */
  keyOrder: KeyOrder;
}

/** What the server must hold before the workload runs. */
export type Precondition = 'fresh' | 'preloaded';

export interface Workload {
  readonly name: string;
  readonly description: string;
  /** Full gRPC method path. */
  readonly method: string;
  readonly needs: Precondition;
  /** Whether the workload changes the key space (a later workload then gets fresh servers). */
  readonly writes: boolean;
  /** Encode request i for key i, for every key of the key space. */
  encodeRequests(o: KeyOptions): Buffer[];
  /** Hot-path check of one response; false counts as an error. Must not allocate. */
  check(resp: Buffer): boolean;
  /** Full decode of a response; throws when it is not what the workload expects. */
  verify(resp: Buffer, o: KeyOptions): void;
}

export const KEY_OPTIONS_DEFAULT: KeyOptions = { keySize: 8, valSize: 256, keySpace: 100_000, keyOrder: 'random' };

/** Key i: the decimal index zero-padded to keySize bytes. */
export function keyOf(i: number, keySize: number): Buffer {
  const s = String(i);
  if (s.length > keySize) throw new Error(`key ${i} does not fit in --key-size ${keySize}`);
  return Buffer.from(s.padStart(keySize, '0'), 'latin1');
}

/** A fixed pseudo-random value (same bytes on every run, not compressible). */
export function valueOf(valSize: number): Buffer {
  const v = Buffer.allocUnsafe(valSize);
  let x = 0x9e3779b9;
  for (let i = 0; i < valSize; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    v[i] = 0x21 + ((x >>> 0) % 94); // printable, so etcdctl output stays readable
  }
  return v;
}

export function checkKeyOptions(o: KeyOptions): void {
  if (!Number.isInteger(o.keySpace) || o.keySpace < 1) throw new Error('--key-space must be >= 1');
  if (!Number.isInteger(o.keySize) || o.keySize < 1) throw new Error('--key-size must be >= 1');
  if (!Number.isInteger(o.valSize) || o.valSize < 0) throw new Error('--val-size must be >= 0');
  keyOf(o.keySpace - 1, o.keySize); // throws when the key space does not fit
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function encodeAll(o: KeyOptions, encode: (key: Buffer) => Uint8Array): Buffer[] {
  checkKeyOptions(o);
  const out = new Array<Buffer>(o.keySpace);
  for (let i = 0; i < o.keySpace; i++) out[i] = toBuffer(encode(keyOf(i, o.keySize)));
  return out;
}

// ResponseHeader is field 1 of every KV response; RangeResponse.kvs is field 2.
const FIELD_HEADER = 1;
const FIELD_KVS = 2;

function verifyHeader(header: etcdserverpb.IResponseHeader | null | undefined): void {
  if (header === null || header === undefined) throw new Error('response without header');
  if (!(Number(header.revision) > 0)) throw new Error(`response header revision ${String(header.revision)}`);
}

const put: Workload = {
  name: 'put',
  description: 'Put of one key (--key-size bytes) with a --val-size value, keys from --key-space in --key-order',
  method: '/etcdserverpb.KV/Put',
  needs: 'fresh',
  writes: true,
  encodeRequests(o) {
    const value = valueOf(o.valSize);
    return encodeAll(o, (key) => etcdserverpb.PutRequest.encode({ key, value }).finish());
  },
  check: (resp) => scanField(resp, FIELD_HEADER) === 1,
  verify(resp) {
    verifyHeader(etcdserverpb.PutResponse.decode(resp).header);
  },
};

function rangeWorkload(name: string, serializable: boolean): Workload {
  return {
    name,
    description:
      `Range (get) of one key of the preloaded key space, ${serializable ? 'serializable (local read)' : 'linearizable (ReadIndex)'}`,
    method: '/etcdserverpb.KV/Range',
    needs: 'preloaded',
    writes: false,
    encodeRequests(o) {
      return encodeAll(o, (key) => etcdserverpb.RangeRequest.encode({ key, serializable }).finish());
    },
    check: (resp) => scanField(resp, FIELD_KVS) === 1,
    verify(resp, o) {
      const r = etcdserverpb.RangeResponse.decode(resp);
      verifyHeader(r.header);
      if (r.kvs.length !== 1) throw new Error(`range returned ${r.kvs.length} kvs, expected 1 (was the key space preloaded?)`);
      const keyLen = r.kvs[0].key?.length ?? 0;
      const valLen = r.kvs[0].value?.length ?? 0;
      if (keyLen !== o.keySize || valLen !== o.valSize) {
        throw new Error(`range returned key of ${keyLen} bytes / value of ${valLen} bytes`);
      }
    },
  };
}

export const WORKLOADS: ReadonlyMap<string, Workload> = new Map(
  [put, rangeWorkload('range', false), rangeWorkload('range-serializable', true)].map((w) => [w.name, w]),
);

/** What the runner needs to know about any workload, unary or streaming. */
export type WorkloadInfo = Pick<Workload, 'name' | 'description' | 'needs' | 'writes'> & { readonly streaming: boolean };

/**
 * Streaming workloads: their drivers are in stream-driver.ts (one load-generator thread
 * each, --workers is ignored). ops/s is events delivered/s (watch-fanout) and
 * keep-alive responses/s (lease-keepalive).
 */
export const STREAM_WORKLOADS: ReadonlyMap<string, WorkloadInfo> = new Map(
  [
    {
      name: 'watch-fanout',
      description:
        '--watchers watch streams on one prefix over --conns connections; one writer puts at --watch-rate/s (0: back-to-back); ' +
        'ops = events delivered (all watchers), latency = put sent -> event received',
      needs: 'fresh' as const,
      writes: true,
      streaming: true,
    },
    {
      name: 'lease-keepalive',
      description: '--clients leases, one LeaseKeepAlive bidi stream each, next request after the previous response; latency = round trip',
      needs: 'fresh' as const,
      writes: true,
      streaming: true,
    },
  ].map((w) => [w.name, w]),
);

export function isStreamWorkload(name: string): boolean {
  return STREAM_WORKLOADS.has(name);
}

/** Any workload by name (unary or streaming). */
export function getWorkloadInfo(name: string): WorkloadInfo {
  const s = STREAM_WORKLOADS.get(name);
  if (s !== undefined) return s;
  const w = WORKLOADS.get(name);
  if (w === undefined) {
    throw new Error(`unknown workload ${JSON.stringify(name)} (known: ${[...WORKLOADS.keys(), ...STREAM_WORKLOADS.keys()].join(', ')})`);
  }
  return { name: w.name, description: w.description, needs: w.needs, writes: w.writes, streaming: false };
}

export function getWorkload(name: string): Workload {
  const w = WORKLOADS.get(name);
  if (w === undefined) throw new Error(`unknown workload ${JSON.stringify(name)} (known: ${[...WORKLOADS.keys()].join(', ')})`);
  return w;
}
