import { etcdserverpb } from '../gen/proto';
import { KeyValue, bufOf, header, num, prefixEnd, toBuf, toLong, type KeyLike, type ResponseHeader } from './convert';
import * as M from './methods';
import type { CallOptions, Pool } from './pool';

// KV: Range / Put / DeleteRange / Compact and the transaction builder.

const pb = etcdserverpb;

/** Which keys: one key, [key, rangeEnd), every key with a prefix, or every key >= key. */
export interface KeyRange {
  key: KeyLike;
  /** Exclusive end of the range. */
  rangeEnd?: KeyLike;
  /** Every key starting with `key`. */
  prefix?: boolean;
  /** Every key >= `key`. */
  fromKey?: boolean;
}

export type SortTarget = 'key' | 'version' | 'create' | 'mod' | 'value';
export type SortOrder = 'none' | 'ascend' | 'descend';

export interface GetQuery extends KeyRange {
  limit?: number;
  /** Read at this revision (0 or absent: the newest). */
  revision?: number;
  /** Local read of the member that answers (may be stale). */
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
  sort?: { target?: SortTarget; order?: SortOrder };
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
}

export interface GetResult {
  header: ResponseHeader;
  kvs: KeyValue[];
  /** More keys matched than `limit` returned. */
  more: boolean;
  count: number;
}

export interface PutOptions {
  /** Attach the key to this lease. */
  lease?: bigint;
  /** Return the previous key-value pair. */
  prevKv?: boolean;
  /** Keep the current value (fails with KeyNotFoundError if the key does not exist). */
  ignoreValue?: boolean;
  /** Keep the current lease (fails with KeyNotFoundError if the key does not exist). */
  ignoreLease?: boolean;
}

export interface PutResult {
  header: ResponseHeader;
  prevKv?: KeyValue;
}

export interface DeleteQuery extends KeyRange {
  prevKv?: boolean;
}

export interface DeleteResult {
  header: ResponseHeader;
  deleted: number;
  prevKvs: KeyValue[];
}

export interface CompactOptions {
  /** Wait until the compaction is physically applied. */
  physical?: boolean;
}

const SORT_TARGET: Record<SortTarget, etcdserverpb.RangeRequest.SortTarget> = {
  key: pb.RangeRequest.SortTarget.KEY,
  version: pb.RangeRequest.SortTarget.VERSION,
  create: pb.RangeRequest.SortTarget.CREATE,
  mod: pb.RangeRequest.SortTarget.MOD,
  value: pb.RangeRequest.SortTarget.VALUE,
};
const SORT_ORDER: Record<SortOrder, etcdserverpb.RangeRequest.SortOrder> = {
  none: pb.RangeRequest.SortOrder.NONE,
  ascend: pb.RangeRequest.SortOrder.ASCEND,
  descend: pb.RangeRequest.SortOrder.DESCEND,
};

function isKeyLike(x: unknown): x is KeyLike {
  return typeof x === 'string' || x instanceof Uint8Array;
}

/** key and range_end on the wire for a KeyRange. */
export function wireRange(r: KeyRange): { key: Buffer; rangeEnd?: Buffer } {
  const key = toBuf(r.key);
  const set = [r.rangeEnd !== undefined, r.prefix === true, r.fromKey === true].filter(Boolean).length;
  if (set > 1) throw new TypeError('cairn client: give at most one of rangeEnd, prefix, fromKey');
  if (r.rangeEnd !== undefined) return { key, rangeEnd: toBuf(r.rangeEnd) };
  if (r.prefix === true) return key.length === 0 ? { key: Buffer.from([0]), rangeEnd: Buffer.from([0]) } : { key, rangeEnd: prefixEnd(key) };
  if (r.fromKey === true) return { key: key.length === 0 ? Buffer.from([0]) : key, rangeEnd: Buffer.from([0]) };
  return { key };
}

export function rangeRequest(q: KeyLike | GetQuery): M.RangeRequest {
  const g: GetQuery = isKeyLike(q) ? { key: q } : q;
  const req: M.RangeRequest = { ...wireRange(g) };
  if (g.limit !== undefined) req.limit = toLong(g.limit);
  if (g.revision !== undefined) req.revision = toLong(g.revision);
  if (g.serializable !== undefined) req.serializable = g.serializable;
  if (g.keysOnly !== undefined) req.keysOnly = g.keysOnly;
  if (g.countOnly !== undefined) req.countOnly = g.countOnly;
  if (g.sort !== undefined) {
    req.sortTarget = SORT_TARGET[g.sort.target ?? 'key'];
    req.sortOrder = SORT_ORDER[g.sort.order ?? 'ascend'];
  }
  if (g.minModRevision !== undefined) req.minModRevision = toLong(g.minModRevision);
  if (g.maxModRevision !== undefined) req.maxModRevision = toLong(g.maxModRevision);
  if (g.minCreateRevision !== undefined) req.minCreateRevision = toLong(g.minCreateRevision);
  if (g.maxCreateRevision !== undefined) req.maxCreateRevision = toLong(g.maxCreateRevision);
  return req;
}

export function putRequest(key: KeyLike, value: KeyLike, o: PutOptions = {}): M.PutRequest {
  const req: M.PutRequest = { key: toBuf(key), value: toBuf(value) };
  if (o.lease !== undefined) req.lease = toLong(o.lease);
  if (o.prevKv !== undefined) req.prevKv = o.prevKv;
  if (o.ignoreValue !== undefined) req.ignoreValue = o.ignoreValue;
  if (o.ignoreLease !== undefined) req.ignoreLease = o.ignoreLease;
  return req;
}

export function deleteRequest(q: KeyLike | DeleteQuery): M.DeleteRangeRequest {
  const d: DeleteQuery = isKeyLike(q) ? { key: q } : q;
  const req: M.DeleteRangeRequest = { ...wireRange(d) };
  if (d.prevKv !== undefined) req.prevKv = d.prevKv;
  return req;
}

export function getResult(r: M.RangeResponse): GetResult {
  return { header: header(r.header), kvs: (r.kvs ?? []).map((kv) => KeyValue.fromWire(kv)), more: r.more === true, count: num(r.count) };
}

export function putResult(r: M.PutResponse): PutResult {
  const out: PutResult = { header: header(r.header) };
  if (r.prevKv) out.prevKv = KeyValue.fromWire(r.prevKv);
  return out;
}

export function deleteResult(r: M.DeleteRangeResponse): DeleteResult {
  return { header: header(r.header), deleted: num(r.deleted), prevKvs: (r.prevKvs ?? []).map((kv) => KeyValue.fromWire(kv)) };
}

// ---------------------------------------------------------------------------------
// Transactions

export type CompareOp = '=' | '!=' | '<' | '>';

const RESULT: Record<CompareOp, etcdserverpb.Compare.CompareResult> = {
  '=': pb.Compare.CompareResult.EQUAL,
  '!=': pb.Compare.CompareResult.NOT_EQUAL,
  '<': pb.Compare.CompareResult.LESS,
  '>': pb.Compare.CompareResult.GREATER,
};

/** One guard of a transaction (build with `compare.*`). */
export interface Comparison {
  readonly wire: M.Compare;
}

const T = pb.Compare.CompareTarget;

export const compare = {
  value: (key: KeyLike, op: CompareOp, value: KeyLike): Comparison => ({ wire: { key: toBuf(key), result: RESULT[op], target: T.VALUE, value: toBuf(value) } }),
  version: (key: KeyLike, op: CompareOp, version: number): Comparison => ({ wire: { key: toBuf(key), result: RESULT[op], target: T.VERSION, version: toLong(version) } }),
  createRevision: (key: KeyLike, op: CompareOp, rev: number): Comparison => ({ wire: { key: toBuf(key), result: RESULT[op], target: T.CREATE, createRevision: toLong(rev) } }),
  modRevision: (key: KeyLike, op: CompareOp, rev: number): Comparison => ({ wire: { key: toBuf(key), result: RESULT[op], target: T.MOD, modRevision: toLong(rev) } }),
  lease: (key: KeyLike, op: CompareOp, lease: bigint): Comparison => ({ wire: { key: toBuf(key), result: RESULT[op], target: T.LEASE, lease: toLong(lease) } }),
  /** The same guard over every key of a range (keys that do not exist are not compared). */
  overRange: (c: Comparison, r: Omit<KeyRange, 'key'> & { key?: KeyLike }): Comparison => {
    const key = r.key ?? bufOf(c.wire.key);
    const w = wireRange({ ...r, key });
    return { wire: { ...c.wire, key: w.key, rangeEnd: w.rangeEnd } };
  },
};

/** One operation of a transaction branch (build with `op.*`). */
export interface Operation {
  readonly wire: M.RequestOp;
  /** Writes nothing (a transaction of such ops may be retried safely). */
  readonly readOnly: boolean;
}

export const op = {
  get: (q: KeyLike | GetQuery): Operation => ({ wire: { requestRange: rangeRequest(q) }, readOnly: true }),
  put: (key: KeyLike, value: KeyLike, o?: PutOptions): Operation => ({ wire: { requestPut: putRequest(key, value, o) }, readOnly: false }),
  delete: (q: KeyLike | DeleteQuery): Operation => ({ wire: { requestDeleteRange: deleteRequest(q) }, readOnly: false }),
  /** A nested transaction. */
  txn: (compares: Comparison[], success: Operation[], failure: Operation[] = []): Operation => ({
    wire: { requestTxn: { compare: compares.map((c) => c.wire), success: success.map((o) => o.wire), failure: failure.map((o) => o.wire) } },
    readOnly: success.every((o) => o.readOnly) && failure.every((o) => o.readOnly),
  }),
};

export type TxnOpResult =
  | ({ type: 'get' } & GetResult)
  | ({ type: 'put' } & PutResult)
  | ({ type: 'delete' } & DeleteResult)
  | ({ type: 'txn' } & TxnResult);

export interface TxnResult {
  header: ResponseHeader;
  succeeded: boolean;
  responses: TxnOpResult[];
  /** The store revision after the transaction (header.revision). */
  revision: number;
}

function opResult(r: M.ResponseOp): TxnOpResult {
  if (r.responseRange) return { type: 'get', ...getResult(r.responseRange) };
  if (r.responsePut) return { type: 'put', ...putResult(r.responsePut) };
  if (r.responseDeleteRange) return { type: 'delete', ...deleteResult(r.responseDeleteRange) };
  if (r.responseTxn) return { type: 'txn', ...txnResult(r.responseTxn) };
  throw new TypeError('cairn client: empty ResponseOp');
}

export function txnResult(r: M.TxnResponse): TxnResult {
  const h = header(r.header);
  return { header: h, succeeded: r.succeeded === true, responses: (r.responses ?? []).map(opResult), revision: h.revision };
}

/**
 * `client.txn().if(...).then(...).else(...).commit()`. The builder has a `then` method, so it
 * is a thenable: never `await` the builder itself or return it from an async function.
 */
export class TxnBuilder {
  private readonly compares: Comparison[] = [];
  private readonly success: Operation[] = [];
  private readonly failure: Operation[] = [];

  constructor(private readonly pool: Pool) {}

  if(...cs: Comparison[]): this {
    this.compares.push(...cs);
    return this;
  }

  then(...ops: Operation[]): this {
    this.success.push(...ops);
    return this;
  }

  else(...ops: Operation[]): this {
    this.failure.push(...ops);
    return this;
  }

  request(): M.TxnRequest {
    return { compare: this.compares.map((c) => c.wire), success: this.success.map((o) => o.wire), failure: this.failure.map((o) => o.wire) };
  }

  async commit(opts?: CallOptions): Promise<TxnResult> {
    const readOnly = this.success.every((o) => o.readOnly) && this.failure.every((o) => o.readOnly);
    return txnResult(await this.pool.unary(M.KV.Txn, this.request(), opts, { idempotent: readOnly }));
  }
}
