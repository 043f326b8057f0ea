import { etcdserverpb } from '../gen/proto';
import { Errors } from '../server/errors';

// Request checks done before anything is proposed, as etcd's v3rpc does them, with etcd's
// errors. They look only at the request, never at the store.

type RequestOp = etcdserverpb.IRequestOp;

export function checkRangeRequest(r: etcdserverpb.IRangeRequest): void {
  if (!r.key || r.key.length === 0) throw Errors.emptyKey();
}

export function checkPutRequest(r: etcdserverpb.IPutRequest): void {
  if (!r.key || r.key.length === 0) throw Errors.emptyKey();
  if (r.ignoreValue && r.value && r.value.length !== 0) throw Errors.valueProvided();
  if (r.ignoreLease && r.lease && Number(r.lease) !== 0) throw Errors.leaseProvided();
}

export function checkDeleteRequest(r: etcdserverpb.IDeleteRangeRequest): void {
  if (!r.key || r.key.length === 0) throw Errors.emptyKey();
}

export function checkTxnRequest(r: etcdserverpb.ITxnRequest, maxTxnOps: number): void {
  checkTxnOps(r, maxTxnOps);
  checkIntervals(r.success ?? []);
  checkIntervals(r.failure ?? []);
}

function checkTxnOps(r: etcdserverpb.ITxnRequest, maxTxnOps: number): void {
  const compare = r.compare ?? [];
  const success = r.success ?? [];
  const failure = r.failure ?? [];
  if (Math.max(compare.length, success.length, failure.length) > maxTxnOps) throw Errors.tooManyOps();
  for (const c of compare) if (!c.key || c.key.length === 0) throw Errors.emptyKey();
  for (const op of [...success, ...failure]) checkRequestOp(op, maxTxnOps);
}

function checkRequestOp(op: RequestOp, maxTxnOps: number): void {
  if (op.requestRange) checkRangeRequest(op.requestRange);
  else if (op.requestPut) checkPutRequest(op.requestPut);
  else if (op.requestDeleteRange) checkDeleteRequest(op.requestDeleteRange);
  else if (op.requestTxn) checkTxnOps(op.requestTxn, maxTxnOps);
  else throw Errors.keyNotFound(); // an empty op: etcd answers "key not found"
}

/** A key interval [start, end); end undefined means the single key start, empty means +infinity. */
interface Interval {
  start: Buffer;
  end: Buffer | undefined;
}

function intervalOf(key: Uint8Array, rangeEnd: Uint8Array | null | undefined): Interval {
  const start = Buffer.from(key);
  if (!rangeEnd || rangeEnd.length === 0) return { start, end: undefined };
  // etcd builds the interval [key, "\0") for a from-key delete, which is empty: such a delete
  // never conflicts with a put in the same txn. cairn keeps that, so txns etcd accepts are accepted.
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { start, end: start };
  return { start, end: Buffer.from(rangeEnd) };
}

function covers(iv: Interval, key: Buffer): boolean {
  if (iv.end === undefined) return iv.start.equals(key);
  if (Buffer.compare(key, iv.start) < 0) return false;
  return iv.end.length === 0 || Buffer.compare(key, iv.end) < 0;
}

/**
 * etcd's rule for a txn branch: no key may be put twice, and no put may fall inside a
 * delete range, at any depth; the success and failure branches of one nested txn are
 * exclusive, so they may put the same key. Returns the branch's puts and deletes.
 */
function checkIntervals(reqs: RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of reqs) {
    const d = op.requestDeleteRange;
    if (d) dels.push(intervalOf(d.key ?? Buffer.alloc(0), d.rangeEnd));
  }
  const hitsDelete = (k: string): boolean => dels.some((iv) => covers(iv, Buffer.from(k, 'latin1')));
  const puts = new Set<string>();
  for (const op of reqs) {
    const t = op.requestTxn;
    if (!t) continue;
    const then = checkIntervals(t.success ?? []);
    const otherwise = checkIntervals(t.failure ?? []);
    for (const k of then.puts) {
      if (puts.has(k) || hitsDelete(k)) throw Errors.duplicateKey();
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      if (puts.has(k) && !then.puts.has(k)) throw Errors.duplicateKey();
      if (hitsDelete(k)) throw Errors.duplicateKey();
      puts.add(k);
    }
    dels.push(...then.dels, ...otherwise.dels);
  }
  for (const op of reqs) {
    const p = op.requestPut;
    if (!p) continue;
    const k = Buffer.from(p.key ?? []).toString('latin1');
    if (puts.has(k) || hitsDelete(k)) throw Errors.duplicateKey();
    puts.add(k);
  }
  return { puts, dels };
}
