import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCairn, startEtcd, type ServerProc } from '../../bench/lib/procs';
import {
  Client,
  CompactedError,
  EtcdError,
  FutureRevisionError,
  KeyNotFoundError,
  LeaseNotFoundError,
  compare,
  op,
  type GetResult,
  type TxnOpResult,
} from '../../src/client';

// The same KV + transaction scenario against cairn and against etcd must give the same
// results (headers aside: cluster and member IDs differ).

function kvs(r: GetResult): Array<[string, string, number, number, number, string]> {
  return r.kvs.map((kv) => [kv.keyString(), kv.valueString(), kv.createRevision, kv.modRevision, kv.version, kv.lease.toString()]);
}

function opSummary(r: TxnOpResult): unknown {
  switch (r.type) {
    case 'get':
      return { get: kvs(r), count: r.count, more: r.more };
    case 'put':
      return { put: r.header.revision, prev: r.prevKv?.valueString() };
    case 'delete':
      return { deleted: r.deleted, prev: r.prevKvs.map((k) => k.valueString()) };
    case 'txn':
      return { txn: r.succeeded, responses: r.responses.map(opSummary) };
  }
}

async function errorOf(p: Promise<unknown>): Promise<EtcdError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof EtcdError) return e;
    throw e;
  }
  throw new Error('expected the call to fail');
}

/** A scenario that touches every KV feature of the client; returns what it observed. */
async function scenario(c: Client): Promise<unknown[]> {
  const out: unknown[] = [];
  const log = (x: unknown): void => {
    out.push(x);
  };
  const p1 = await c.put('a', '1');
  log(['put a', p1.header.revision, p1.prevKv]);
  log(['put a prevKv', (await c.put('a', '2', { prevKv: true })).prevKv?.valueString()]);
  for (const k of ['b', 'c', 'd', 'dir/x', 'dir/y', 'dir/z']) await c.put(k, `v-${k}`);
  log(['get a', kvs(await c.get('a'))]);
  log(['getString a', await c.getString('a'), await c.getString('missing')]);
  log(['prefix dir/', kvs(await c.get({ key: 'dir/', prefix: true }))]);
  log(['range b..d', kvs(await c.get({ key: 'b', rangeEnd: 'd' }))]);
  log(['fromKey c', kvs(await c.get({ key: 'c', fromKey: true }))]);
  const lim = await c.get({ key: '', prefix: true, limit: 2, sort: { target: 'key', order: 'descend' } });
  log(['limit 2 desc', kvs(lim), lim.more, lim.count]);
  log(['countOnly', (await c.get({ key: 'dir/', prefix: true, countOnly: true })).count]);
  log(['keysOnly', kvs(await c.get({ key: 'dir/', prefix: true, keysOnly: true }))]);
  log(['at revision 2', kvs(await c.get({ key: 'a', revision: 2 }))]);
  log(['serializable', kvs(await c.get({ key: 'a', serializable: true }))]);
  log(['sort by mod desc', kvs(await c.get({ key: '', prefix: true, sort: { target: 'mod', order: 'descend' }, keysOnly: true }))]);
  const del = await c.delete({ key: 'dir/', prefix: true, prevKv: true });
  log(['delete dir/', del.deleted, del.prevKvs.map((k) => k.keyString())]);
  log(['delete missing', (await c.delete('nope')).deleted]);

  // Transactions
  const t1 = await c
    .txn()
    .if(compare.value('a', '=', '2'), compare.modRevision('a', '<', 100))
    .then(op.put('a', '3'), op.get('a'), op.delete('b'))
    .else(op.get('b'))
    .commit();
  log(['txn success', t1.succeeded, t1.revision, t1.responses.map(opSummary)]);
  const t2 = await c.txn().if(compare.version('a', '>', 10)).then(op.put('x', 'y')).else(op.get('a'), op.get({ key: 'c', prefix: true })).commit();
  log(['txn failure', t2.succeeded, t2.revision, t2.responses.map(opSummary)]);
  const t3 = await c.txn().if(compare.createRevision('zz', '=', 0)).then(op.put('zz', 'new')).commit();
  log(['txn create-if-absent', t3.succeeded, t3.responses.map(opSummary)]);
  const t4 = await c.txn().if(compare.createRevision('zz', '=', 0)).then(op.put('zz', 'again')).commit();
  log(['txn create-if-absent again', t4.succeeded, t4.responses.map(opSummary)]);
  const t5 = await c.txn().then(op.txn([compare.value('zz', '=', 'new')], [op.get('zz')], [op.put('zz', 'x')])).commit();
  log(['nested txn', t5.succeeded, t5.responses.map(opSummary)]);
  const t6 = await c.txn().if(compare.overRange(compare.version('c', '>', 0), { key: 'c', prefix: true })).then(op.get('c')).commit();
  log(['range compare', t6.succeeded]);
  log(['empty txn', (await c.txn().commit()).succeeded]);

  // Typed errors with etcd's code and message
  const nf = await errorOf(c.put('absent', '', { ignoreValue: true }));
  log(['ignoreValue on absent key', nf.constructor.name, nf.code, nf.details]);
  expect(nf).toBeInstanceOf(KeyNotFoundError);
  const fut = await errorOf(c.get({ key: 'a', revision: 10_000 }));
  log(['future revision', fut.constructor.name, fut.code, fut.details]);
  expect(fut).toBeInstanceOf(FutureRevisionError);
  const rev = (await c.get('a')).header.revision;
  await c.compact(rev - 2, { physical: true });
  const cmp = await errorOf(c.get({ key: 'a', revision: rev - 3 }));
  log(['compacted', cmp.constructor.name, cmp.code, cmp.details]);
  expect(cmp).toBeInstanceOf(CompactedError);
  const cmp2 = await errorOf(c.compact(rev - 3));
  log(['compact again', cmp2.constructor.name, cmp2.code]);
  const lnf = await errorOf(c.put('leased', 'v', { lease: 0x7fff_ffff_ffff_fff0n }));
  log(['put with unknown lease', lnf.constructor.name, lnf.code, lnf.details]);
  expect(lnf).toBeInstanceOf(LeaseNotFoundError);
  return out;
}

describe('KV and transactions: cairn answers as etcd does', () => {
  let cairn: ServerProc;
  let etcd: ServerProc;
  beforeAll(async () => {
    [cairn, etcd] = await Promise.all([startCairn(), startEtcd()]);
  });
  afterAll(async () => {
    await Promise.all([cairn?.stop(), etcd?.stop()]);
  });

  it('the same scenario gives the same results on both servers', async () => {
    const cc = new Client({ endpoints: [cairn.endpoint] });
    const ec = new Client({ endpoints: [etcd.endpoint] });
    try {
      const onEtcd = await scenario(ec);
      const onCairn = await scenario(cc);
      expect(onEtcd[0]).toEqual(['put a', 2, undefined]);
      expect(onCairn).toEqual(onEtcd);
    } finally {
      cc.close();
      ec.close();
    }
  });

  it('lease IDs and uint64 header IDs keep full precision', async () => {
    for (const ep of [cairn.endpoint, etcd.endpoint]) {
      const c = new Client({ endpoints: [ep] });
      try {
        const r = await c.get('a');
        expect(typeof r.header.memberId).toBe('bigint');
        expect(r.header.memberId).toBeGreaterThan(0n);
        expect(r.header.clusterId).toBeGreaterThan(0n);
      } finally {
        c.close();
      }
    }
  });
});
