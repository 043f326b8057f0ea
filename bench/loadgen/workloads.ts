/**
 * The workload table. A workload is one gRPC unary method, a pool of requests encoded
 * once before the run (request i addresses key i of the key space), a cheap response
 * check for every call and a full decode of a few responses.
 *
 * To add a workload (delete, lease-grant, ...), add an entry to WORKLOADS; the load
 * generator and the runner pick it up by name. Streaming and mixed workloads
 * (watch-fanout, lease-keepalive, config-mix) are listed in STREAM_WORKLOADS and driven
 * by stream-driver.ts and config-mix.ts.
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
  /** txn-put: puts per Txn (distinct keys i, i+1, ... of the key space; default 1). */
  txnOps?: number;
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
  check(resp: Buffer, o: KeyOptions): boolean;
  /** Full decode of a response; throws when it is not what the workload expects. */
  verify(resp: Buffer, o: KeyOptions): void;
}

export const KEY_OPTIONS_DEFAULT: KeyOptions = { keySize: 8, valSize: 256, keySpace: 100_000, keyOrder: 'random' };

/** etcd's default --max-txn-ops: a Txn with more operations is refused. */
export const MAX_TXN_OPS = 128;
/** range-prefix: keys per Range (the last two decimal digits of the key vary). */
export const PREFIX_RANGE_KEYS = 100;

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
  const txnOps = o.txnOps ?? 1;
  if (!Number.isInteger(txnOps) || txnOps < 1 || txnOps > MAX_TXN_OPS) throw new Error(`--txn-ops must be 1..${MAX_TXN_OPS} (etcd's --max-txn-ops)`);
  if (txnOps > o.keySpace) throw new Error('--txn-ops must not exceed --key-space (the keys of one Txn must differ)');
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

// ResponseHeader is field 1 of every KV response; RangeResponse.kvs is field 2;
// TxnResponse.succeeded is field 2 and TxnResponse.responses field 3.
const FIELD_HEADER = 1;
const FIELD_KVS = 2;
const FIELD_TXN_SUCCEEDED = 2;
const FIELD_TXN_RESPONSES = 3;

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

/**
 * etcd benchmark's txn-put (3.4): a Txn without compares whose success branch puts
 * --txn-ops keys. Request i puts keys i, i+1, ..., i+txnOps-1 (mod the key space), so
 * the keys of one Txn always differ (etcd refuses a Txn that puts one key twice).
 */
const txnPut: Workload = {
  name: 'txn-put',
  description: 'Txn (no compares) whose success branch puts --txn-ops (1) keys with --val-size values, keys from --key-space in --key-order',
  method: '/etcdserverpb.KV/Txn',
  needs: 'fresh',
  writes: true,
  encodeRequests(o) {
    checkKeyOptions(o);
    const value = valueOf(o.valSize);
    const n = o.txnOps ?? 1;
    const keys = new Array<Buffer>(o.keySpace);
    for (let i = 0; i < o.keySpace; i++) keys[i] = keyOf(i, o.keySize);
    const out = new Array<Buffer>(o.keySpace);
    for (let i = 0; i < o.keySpace; i++) {
      const success: etcdserverpb.IRequestOp[] = [];
      for (let j = 0; j < n; j++) success.push({ requestPut: { key: keys[(i + j) % o.keySpace], value } });
      out[i] = toBuffer(etcdserverpb.TxnRequest.encode({ success }).finish());
    }
    return out;
  },
  check: (resp, o) => scanField(resp, FIELD_TXN_SUCCEEDED) === 1 && scanField(resp, FIELD_TXN_RESPONSES) === (o.txnOps ?? 1),
  verify(resp, o) {
    const r = etcdserverpb.TxnResponse.decode(resp);
    verifyHeader(r.header);
    if (!r.succeeded) throw new Error('txn without compares answered succeeded=false');
    if (r.responses.length !== (o.txnOps ?? 1)) throw new Error(`txn answered ${r.responses.length} responses for ${o.txnOps ?? 1} puts`);
    for (const op of r.responses) if (op.responsePut === null || op.responsePut === undefined) throw new Error('txn response op is not a put response');
  },
};

/** The Range covering key i's group of PREFIX_RANGE_KEYS keys: its key without the last two digits, as a prefix. */
function prefixRange(key: Buffer): { key: Buffer; rangeEnd: Buffer } {
  const prefix = key.subarray(0, key.length - 2);
  const rangeEnd = Buffer.from(prefix);
  rangeEnd[rangeEnd.length - 1]++; // a decimal digit, never 0xff
  return { key: Buffer.from(prefix), rangeEnd };
}

/**
 * A linearizable Range over a prefix that matches exactly PREFIX_RANGE_KEYS preloaded
 * keys: keys are zero-padded decimal indices, so the keys sharing all but their last
 * two digits are a group of 100 (e.g. prefix 000123 -> keys 00012300..00012399).
 * Request i reads key i's group, so a random key walk reads random groups.
 */
const rangePrefix: Workload = {
  name: 'range-prefix',
  description: `Range (linearizable) over a key prefix matching exactly ${PREFIX_RANGE_KEYS} preloaded keys (all but the last two digits of a key)`,
  method: '/etcdserverpb.KV/Range',
  needs: 'preloaded',
  writes: false,
  encodeRequests(o) {
    checkKeyOptions(o);
    if (o.keySize < 3) throw new Error('range-prefix needs --key-size >= 3 (a prefix plus two digits)');
    if (o.keySpace % PREFIX_RANGE_KEYS !== 0) throw new Error(`range-prefix needs --key-space to be a multiple of ${PREFIX_RANGE_KEYS}`);
    const groups: Buffer[] = [];
    for (let g = 0; g < o.keySpace / PREFIX_RANGE_KEYS; g++) {
      groups.push(toBuffer(etcdserverpb.RangeRequest.encode(prefixRange(keyOf(g * PREFIX_RANGE_KEYS, o.keySize))).finish()));
    }
    const out = new Array<Buffer>(o.keySpace);
    for (let i = 0; i < o.keySpace; i++) out[i] = groups[Math.floor(i / PREFIX_RANGE_KEYS)];
    return out;
  },
  check: (resp) => scanField(resp, FIELD_KVS) === PREFIX_RANGE_KEYS,
  verify(resp, o) {
    const r = etcdserverpb.RangeResponse.decode(resp);
    verifyHeader(r.header);
    if (r.kvs.length !== PREFIX_RANGE_KEYS || Number(r.count) !== PREFIX_RANGE_KEYS) {
      throw new Error(`prefix range returned ${r.kvs.length} kvs (count ${String(r.count)}), expected ${PREFIX_RANGE_KEYS} (was the key space preloaded?)`);
    }
    const prefix = Buffer.from(r.kvs[0].key ?? new Uint8Array(0)).subarray(0, o.keySize - 2);
    for (const kv of r.kvs) {
      const key = Buffer.from(kv.key ?? new Uint8Array(0));
      if (key.length !== o.keySize || !key.subarray(0, o.keySize - 2).equals(prefix)) throw new Error(`prefix range returned key ${key.toString('latin1')} outside the prefix`);
      if ((kv.value?.length ?? 0) !== o.valSize) throw new Error(`prefix range returned a value of ${kv.value?.length ?? 0} bytes`);
    }
  },
};

export const WORKLOADS: ReadonlyMap<string, Workload> = new Map(
  [put, txnPut, rangeWorkload('range', false), rangeWorkload('range-serializable', true), rangePrefix].map((w) => [w.name, w]),
);

/**
 * A further table row for a workload whose run measures more than one thing (config-mix:
 * writes and watch events next to its reads): the names of the LoadResult.extra values
 * that hold its rate and latencies.
 */
export interface ExtraRow {
  readonly label: string;
  readonly ops: string;
  readonly p50: string;
  readonly p99: string;
}

/** What the runner needs to know about any workload, unary or streaming. */
export type WorkloadInfo = Pick<Workload, 'name' | 'description' | 'needs' | 'writes'> & {
  readonly streaming: boolean;
  /** Label of the main row (ops/s and latency of LoadResult) when it is not just the name. */
  readonly mainLabel?: string;
  readonly rows?: readonly ExtraRow[];
};

/**
 * Streaming and mixed workloads: their drivers are in stream-driver.ts and config-mix.ts
 * (one load-generator thread each, --workers is ignored, so senders and receivers share
 * one clock). ops/s is events delivered/s (watch-fanout), keep-alive responses/s
 * (lease-keepalive) and reads/s (config-mix, with its writes and watch events as rows
 * of their own).
 */
export const STREAM_WORKLOADS: ReadonlyMap<string, WorkloadInfo> = new Map<string, WorkloadInfo>(
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
    {
      name: 'config-mix',
      description:
        'configuration service: --clients readers Range one of --mix-keys config keys (--mix-serializable of them serializable, the rest linearizable), ' +
        '--mix-watchers watchers on the config prefix, one writer updating config keys at --mix-write-rate puts/s; ' +
        'every watcher must receive every write',
      needs: 'fresh' as const,
      writes: true,
      streaming: true,
      mainLabel: 'config-mix reads',
      rows: [
        { label: 'config-mix writes', ops: 'putsPerSecInWindow', p50: 'putP50Ms', p99: 'putP99Ms' },
        { label: 'config-mix watch delivery', ops: 'eventsPerSecInWindow', p50: 'watchP50Ms', p99: 'watchP99Ms' },
      ],
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
