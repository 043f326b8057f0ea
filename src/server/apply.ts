import { etcdserverpb } from '../gen/proto';
import { MvccStore, WriteTxn } from '../mvcc/store';
import { KeyValue, MvccError, RangeResult } from '../mvcc/types';
import { asBuffer, kvToWire, toBigInt, toNumber } from './convert';
import { Errors } from './errors';

// Executes KV requests against the store with etcd's semantics (etcd's applierV3backend):
// what a Range returns, how Put and DeleteRange report prev values, how a Txn picks its
// branch and which revision each response header carries. Apply reads no clock and no
// randomness: replaying the same entries gives the same store.

type RangeRequest = etcdserverpb.IRangeRequest;
type TxnRequest = etcdserverpb.ITxnRequest;
type RequestOp = etcdserverpb.IRequestOp;
type Compare = etcdserverpb.ICompare;
type Reader = (key: Buffer, end: Buffer | undefined) => RangeResult;

const SortOrder = etcdserverpb.RangeRequest.SortOrder;
const SortTarget = etcdserverpb.RangeRequest.SortTarget;
const CompareResult = etcdserverpb.Compare.CompareResult;
const CompareTarget = etcdserverpb.Compare.CompareTarget;

/** A range_end of "\0" means "to the end of the key space"; an empty one means one key. */
export function rangeEnd(end: Uint8Array | null | undefined): Buffer | undefined {
  return end && end.length > 0 ? asBuffer(end) : undefined;
}

export function mvccError(e: unknown): unknown {
  if (e instanceof MvccError) return e.code === 'compacted' ? Errors.compacted() : Errors.futureRevision();
  return e;
}

/** The parts of a Range etcd's mvcc reads: the limit is widened or dropped when sorting and filtering happen after. */
export function mvccRangeOptions(r: RangeRequest): { revision: number; limit: number; countOnly: boolean } {
  const needsAll =
    (r.sortOrder ?? SortOrder.NONE) !== SortOrder.NONE || toNumber(r.minModRevision) !== 0 || toNumber(r.maxModRevision) !== 0 ||
    toNumber(r.minCreateRevision) !== 0 || toNumber(r.maxCreateRevision) !== 0;
  const limit = toNumber(r.limit);
  return { revision: toNumber(r.revision), limit: needsAll || limit <= 0 ? 0 : limit + 1, countOnly: r.countOnly === true };
}

export function validateSort(r: RangeRequest): void {
  if (!((r.sortOrder ?? 0) in SortOrder) || !((r.sortTarget ?? 0) in SortTarget)) throw Errors.invalidSortOption();
}

/** Turns what mvcc read into etcd's RangeResponse: filters, sort, limit and `more`. */
export function rangeResponse(r: RangeRequest, rr: RangeResult): etcdserverpb.IRangeResponse {
  let kvs = rr.kvs;
  const maxMod = toNumber(r.maxModRevision);
  const minMod = toNumber(r.minModRevision);
  const maxCreate = toNumber(r.maxCreateRevision);
  const minCreate = toNumber(r.minCreateRevision);
  if (maxMod !== 0) kvs = kvs.filter((kv) => kv.modRevision <= maxMod);
  if (minMod !== 0) kvs = kvs.filter((kv) => kv.modRevision >= minMod);
  if (maxCreate !== 0) kvs = kvs.filter((kv) => kv.createRevision <= maxCreate);
  if (minCreate !== 0) kvs = kvs.filter((kv) => kv.createRevision >= minCreate);
  let order = r.sortOrder ?? SortOrder.NONE;
  const target = r.sortTarget ?? SortTarget.KEY;
  // mvcc returns keys ascending; sorting by another target defaults to ascending.
  if (target !== SortTarget.KEY && order === SortOrder.NONE) order = SortOrder.ASCEND;
  if (order === SortOrder.ASCEND || order === SortOrder.DESCEND) {
    const cmp = comparator(target);
    // A stable sort: ties keep key order, as Go's sort does for the small sets etcd tests.
    kvs = kvs === rr.kvs ? kvs.slice() : kvs;
    kvs.sort(order === SortOrder.ASCEND ? cmp : (a, b) => cmp(b, a));
  }
  const limit = toNumber(r.limit);
  let more = false;
  if (limit > 0 && kvs.length > limit) {
    kvs = kvs.slice(0, limit);
    more = true;
  }
  const out = new Array<ReturnType<typeof kvToWire>>(kvs.length);
  for (let i = 0; i < kvs.length; i++) out[i] = kvToWire(kvs[i], r.keysOnly === true);
  return { header: { revision: rr.revision }, kvs: out, more, count: rr.count };
}

function comparator(target: number): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case SortTarget.VERSION:
      return (a, b) => a.version - b.version;
    case SortTarget.CREATE:
      return (a, b) => a.createRevision - b.createRevision;
    case SortTarget.MOD:
      return (a, b) => a.modRevision - b.modRevision;
    case SortTarget.VALUE:
      return (a, b) => Buffer.compare(a.value, b.value);
    default:
      return (a, b) => Buffer.compare(a.key, b.key);
  }
}

// ---- Txn -------------------------------------------------------------------------------

/** True when no operation of the txn (at any depth) writes. */
export function isTxnReadOnly(r: TxnRequest): boolean {
  const ops = (list: RequestOp[] | null | undefined): boolean =>
    (list ?? []).every((op) => !!op.requestRange || (!!op.requestTxn && isTxnReadOnly(op.requestTxn)));
  return ops(r.success) && ops(r.failure);
}

export function isTxnSerializable(r: TxnRequest): boolean {
  const ops = (list: RequestOp[] | null | undefined): boolean =>
    (list ?? []).every((op) =>
      op.requestRange ? op.requestRange.serializable === true : op.requestTxn ? isTxnSerializable(op.requestTxn) : false,
    );
  return ops(r.success) && ops(r.failure);
}

/** Evaluates every compare of the txn and its nested txns (on the chosen branches) up front, as etcd does. */
function compareToPath(read: Reader, r: TxnRequest): boolean[] {
  const path = [applyCompares(read, r.compare ?? [])];
  for (const op of branch(r, path[0])) {
    if (op.requestTxn) path.push(...compareToPath(read, op.requestTxn));
  }
  return path;
}

function applyCompares(read: Reader, compares: Compare[]): boolean {
  for (const c of compares) {
    const rr = read(asBuffer(c.key), rangeEnd(c.rangeEnd));
    if (rr.kvs.length === 0) {
      // A value compare on a missing key always fails; the others compare against zero.
      if (c.target === CompareTarget.VALUE) return false;
      if (!compareKv(c, undefined)) return false;
      continue;
    }
    for (const kv of rr.kvs) if (!compareKv(c, kv)) return false;
  }
  return true;
}

function compareKv(c: Compare, kv: KeyValue | undefined): boolean {
  let result: number;
  switch (c.target ?? CompareTarget.VERSION) {
    case CompareTarget.VALUE:
      result = Buffer.compare(kv ? kv.value : EMPTY, c.value ? asBuffer(c.value) : EMPTY);
      break;
    case CompareTarget.CREATE:
      result = Math.sign((kv?.createRevision ?? 0) - toNumber(c.createRevision));
      break;
    case CompareTarget.MOD:
      result = Math.sign((kv?.modRevision ?? 0) - toNumber(c.modRevision));
      break;
    case CompareTarget.VERSION:
      result = Math.sign((kv?.version ?? 0) - toNumber(c.version));
      break;
    case CompareTarget.LEASE: {
      const a = kv?.lease ?? 0n;
      const b = toBigInt(c.lease);
      result = a === b ? 0 : a < b ? -1 : 1;
      break;
    }
    default:
      return true;
  }
  switch (c.result ?? CompareResult.EQUAL) {
    case CompareResult.EQUAL:
      return result === 0;
    case CompareResult.NOT_EQUAL:
      return result !== 0;
    case CompareResult.GREATER:
      return result > 0;
    case CompareResult.LESS:
      return result < 0;
    default:
      return true;
  }
}

const EMPTY = Buffer.alloc(0);

export interface LeaseLookup {
  exists(id: bigint): boolean;
}

export const NO_LEASES: LeaseLookup = { exists: () => false };

/**
 * Runs one Txn: compares first (on the state before the txn), then checks the chosen ops
 * (so a bad op fails the whole txn with nothing applied), then executes them. Ranges at an
 * explicit revision are read before any write, since they never see the txn's own changes.
 */
export class TxnExecutor {
  constructor(private readonly store: MvccStore, private readonly leases: LeaseLookup) {}

  async execute(r: TxnRequest): Promise<etcdserverpb.ITxnResponse> {
    const readOnly = isTxnReadOnly(r);
    const current: Reader = (k, e) => this.store.rangeCurrent(k, e);
    const path = compareToPath(current, r);
    this.check(r, path.slice(), current, readOnly);
    const prefetched = new Map<RangeRequest, RangeResult>();
    const pending: Promise<void>[] = [];
    this.forEachChosenOp(r, path.slice(), (op) => {
      const rr = op.requestRange;
      if (!rr || toNumber(rr.revision) <= 0) return;
      const opts = mvccRangeOptions(rr);
      pending.push(this.store.range(asBuffer(rr.key), rangeEnd(rr.rangeEnd), opts).then((res) => void prefetched.set(rr, res)));
    });
    if (pending.length > 0) {
      try {
        await Promise.all(pending);
      } catch (e) {
        throw mvccError(e);
      }
    }
    return this.run(r, path, prefetched, readOnly);
  }

  /** The synchronous part, for callers that know no prefetch is needed. */
  private run(r: TxnRequest, path: boolean[], prefetched: Map<RangeRequest, RangeResult>, readOnly: boolean): etcdserverpb.ITxnResponse {
    if (readOnly) {
      const resp = this.applyOps(undefined, r, path, prefetched);
      resp.header = { revision: this.store.currentRevision };
      return resp;
    }
    const txn = this.store.write();
    const resp = this.applyOps(txn, r, path, prefetched);
    resp.header = { revision: txn.end() };
    return resp;
  }

  private applyOps(txn: WriteTxn | undefined, r: TxnRequest, path: boolean[], prefetched: Map<RangeRequest, RangeResult>): etcdserverpb.ITxnResponse {
    const succeeded = path.shift()!;
    const responses: etcdserverpb.IResponseOp[] = [];
    for (const op of branch(r, succeeded)) {
      if (op.requestRange) {
        const rr = op.requestRange;
        const early = prefetched.get(rr);
        const res = early
          ? { ...early, revision: txn ? txn.readRevision : this.store.currentRevision }
          : txn
            ? txn.range(asBuffer(rr.key), rangeEnd(rr.rangeEnd), mvccRangeOptions(rr))
            : this.store.rangeCurrent(asBuffer(rr.key), rangeEnd(rr.rangeEnd), mvccRangeOptions(rr));
        responses.push({ responseRange: rangeResponse(rr, res) });
      } else if (op.requestPut) {
        responses.push({ responsePut: applyPut(txn!, op.requestPut) });
      } else if (op.requestDeleteRange) {
        responses.push({ responseDeleteRange: applyDeleteRange(txn!, op.requestDeleteRange) });
      } else if (op.requestTxn) {
        const nested = this.applyOps(txn, op.requestTxn, path, prefetched);
        nested.header = {};
        responses.push({ responseTxn: nested });
      }
    }
    return { succeeded, responses };
  }

  private check(r: TxnRequest, path: boolean[], read: Reader, readOnly: boolean): void {
    this.forEachChosenOp(r, path, (op) => {
      if (op.requestRange) {
        const rev = toNumber(op.requestRange.revision);
        if (rev > this.store.currentRevision) throw Errors.futureRevision();
        if (rev > 0 && rev < this.store.compactRevision) throw Errors.compacted();
      } else if (op.requestPut && !readOnly) {
        checkPut(op.requestPut, read, this.leases);
      }
    });
  }

  private forEachChosenOp(r: TxnRequest, path: boolean[], visit: (op: RequestOp) => void): void {
    const succeeded = path.shift()!;
    for (const op of branch(r, succeeded)) {
      if (op.requestTxn) this.forEachChosenOp(op.requestTxn, path, visit);
      else visit(op);
    }
  }
}

export function checkPut(p: etcdserverpb.IPutRequest, read: Reader, leases: LeaseLookup): void {
  const lease = toBigInt(p.lease);
  if (lease !== 0n && !leases.exists(lease)) throw Errors.leaseNotFound();
  if (p.ignoreValue || p.ignoreLease) {
    if (read(asBuffer(p.key), undefined).kvs.length === 0) throw Errors.keyNotFound();
  }
}

export function applyPut(txn: WriteTxn, p: etcdserverpb.IPutRequest): etcdserverpb.IPutResponse {
  const key = asBuffer(p.key);
  let value = asBuffer(p.value);
  let lease = toBigInt(p.lease);
  let prev: KeyValue | undefined;
  if (p.ignoreValue || p.ignoreLease || p.prevKv) {
    prev = txn.range(key, undefined).kvs[0];
    if ((p.ignoreValue || p.ignoreLease) && prev === undefined) throw Errors.keyNotFound();
    if (p.ignoreValue) value = prev!.value;
    if (p.ignoreLease) lease = prev!.lease;
  }
  txn.put(key, value, lease);
  return { header: { revision: txn.readRevision }, prevKv: p.prevKv && prev ? kvToWire(prev) : undefined };
}

export function applyDeleteRange(txn: WriteTxn, d: etcdserverpb.IDeleteRangeRequest): etcdserverpb.IDeleteRangeResponse {
  const deleted = txn.deleteRange(asBuffer(d.key), rangeEnd(d.rangeEnd));
  return {
    header: { revision: txn.readRevision },
    deleted: deleted.length,
    prevKvs: d.prevKv ? deleted.map((kv) => kvToWire(kv)) : [],
  };
}

function branch(r: TxnRequest, succeeded: boolean): RequestOp[] {
  return (succeeded ? r.success : r.failure) ?? [];
}

