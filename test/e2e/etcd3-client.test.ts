/**
 * The `etcd3` npm client (v1.1) against a real cairn process: the KV scenarios of the
 * etcdctl golden test, each run through the client against cairn and against a real etcd
 * fed the same sequence. Results (decoded responses, or the client's error class and
 * message) must be equal, ignoring the header's cluster_id / member_id / raft_term; the
 * cairn side is also checked against explicit expectations.
 *
 *   npx vitest run test/e2e/etcd3-client.test.ts        (needs `npm run build`)
 */
import { Etcd3, GRPCInvalidArgumentError, GRPCOutOfRangeError } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCairn, startEtcd, type ServerProc } from '../../bench/lib/procs';
import { normalize } from '../helpers/raw-grpc';
import { startAll } from '../helpers/servers';

let servers: ServerProc[] = [];
let cairn: Etcd3;
let etcd: Etcd3;

beforeAll(async () => {
  servers = await startAll([() => startCairn(), () => startEtcd()]);
  cairn = new Etcd3({ hosts: servers[0].endpoint });
  etcd = new Etcd3({ hosts: servers[1].endpoint });
});

afterAll(async () => {
  cairn?.close();
  etcd?.close();
  await Promise.all(servers.map((s) => s.stop()));
});

type Outcome<T> = { ok: true; value: T } | { ok: false; cls: string; message: string; error: Error };

async function outcome<T>(p: Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await p };
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    return { ok: false, cls: error.constructor.name, message: error.message, error };
  }
}

function comparable(o: Outcome<unknown>): unknown {
  return o.ok ? { ok: true, value: normalize(o.value) } : { ok: false, cls: o.cls, message: o.message };
}

/** Runs fn against cairn, then against etcd; the outcomes must be equal. Returns cairn's. */
async function both<T>(fn: (c: Etcd3) => Promise<T>): Promise<Outcome<T>> {
  const oc = await outcome(fn(cairn));
  const oe = await outcome(fn(etcd));
  expect(comparable(oc), 'cairn vs etcd').toEqual(comparable(oe));
  return oc;
}

/** Like both(), but cairn must succeed; returns its value. */
async function bothOk<T>(fn: (c: Etcd3) => Promise<T>): Promise<T> {
  const o = await both(fn);
  if (!o.ok) throw o.error;
  return o.value;
}

const str = (kvs: Array<{ key: Buffer; value: Buffer }> | undefined): string[] =>
  (kvs ?? []).map((kv) => `${kv.key.toString()}=${kv.value.toString()}`);

const BIG = Buffer.alloc(1024 * 1024);
for (let i = 0; i < BIG.length; i++) BIG[i] = (i * 31 + (i >> 10)) & 0xff;

// Revisions in comments: a fresh store starts at revision 1.
describe('etcd3 client: put / get', () => {
  it('puts keys and reads them back', async () => {
    const r = await bothOk((c) => c.put('foo').value('bar').exec()); // 2
    expect(r.header.revision).toBe('2');
    await bothOk((c) => c.put('foo1').value('bar1').exec()); // 3
    await bothOk((c) => c.put('foo2').value('hello world').exec()); // 4
    await bothOk((c) => c.put('foo3').value('héllo wörld ✓ 日本語 🙂').exec()); // 5
    await bothOk((c) => c.put('zoo').value('zval').exec()); // 6
    const prev = await bothOk((c) => c.put('foo').value('bar2').getPrevious()); // 7
    expect(prev.value?.toString()).toBe('bar');
    expect(prev.mod_revision).toBe('2');
    await bothOk((c) => c.put('k1').value('v3').exec()); // 8
    await bothOk((c) => c.put('k2').value('v1').exec()); // 9
    await bothOk((c) => c.put('k3').value('v2').exec()); // 10
    await bothOk((c) => c.put('k2').value('v1b').exec()); // 11
    await bothOk((c) => c.put('empty').value('').exec()); // 12
    const newPrev = await bothOk((c) => c.put('newkey').value('x').getPrevious()); // 13
    expect(newPrev.key).toBeUndefined();

    expect(await bothOk((c) => c.get('foo').string())).toBe('bar2');
    expect(await bothOk((c) => c.get('foo3').string())).toBe('héllo wörld ✓ 日本語 🙂');
    expect(await bothOk((c) => c.get('empty').string())).toBe('');
    expect(await bothOk((c) => c.get('missing').string())).toBeNull();
    expect(await bothOk((c) => c.get('missing').exists())).toBe(false);
    const full = await bothOk((c) => c.get('foo').exec());
    expect(full.kvs).toHaveLength(1);
    expect(full.kvs[0]).toMatchObject({ create_revision: '2', mod_revision: '7', version: '2' });
    expect(full.header.revision).toBe('13');
    const k2 = await bothOk((c) => c.get('k2').exec());
    expect(k2.kvs[0]).toMatchObject({ create_revision: '9', mod_revision: '11', version: '2' });
  });

  it('prefix, explicit and from-key ranges, limit, keys-only and count-only', async () => {
    expect(await bothOk((c) => c.getAll().prefix('foo').strings())).toEqual({
      foo: 'bar2',
      foo1: 'bar1',
      foo2: 'hello world',
      foo3: 'héllo wörld ✓ 日本語 🙂',
    });
    expect(await bothOk((c) => c.getAll().prefix('foo').keys())).toEqual(['foo', 'foo1', 'foo2', 'foo3']);
    const limited = await bothOk((c) => c.getAll().prefix('foo').limit(2).exec());
    expect(str(limited.kvs)).toEqual(['foo=bar2', 'foo1=bar1']);
    expect(limited.more).toBe(true);
    expect(limited.count).toBe('4');
    const explicit = await bothOk((c) => c.getAll().inRange({ start: 'foo', end: 'foo3' }).keys());
    expect(explicit).toEqual(['foo', 'foo1', 'foo2']);
    expect(await bothOk((c) => c.getAll().all().keys())).toEqual([
      'empty', 'foo', 'foo1', 'foo2', 'foo3', 'k1', 'k2', 'k3', 'newkey', 'zoo',
    ]);
    const fromKey = await bothOk((c) => c.getAll().inRange({ start: 'foo2', end: Buffer.from([0]) }).keys());
    expect(fromKey).toEqual(['foo2', 'foo3', 'k1', 'k2', 'k3', 'newkey', 'zoo']);
    const fromKeyLimited = await bothOk((c) => c.getAll().inRange({ start: 'k', end: Buffer.from([0]) }).limit(3).exec());
    expect(fromKeyLimited.kvs.map((kv) => kv.key.toString())).toEqual(['k1', 'k2', 'k3']);
    expect(fromKeyLimited.more).toBe(true);
    // keys-only and count-only through the client's raw KV stub.
    const keysOnly = await bothOk((c) => c.kv.range({ key: Buffer.from('foo'), range_end: Buffer.from('fop'), keys_only: true }));
    expect(keysOnly.kvs.map((kv) => kv.value.length)).toEqual([0, 0, 0, 0]);
    expect(keysOnly.kvs[0].mod_revision).toBe('7');
    expect(await bothOk((c) => c.getAll().prefix('k').count())).toBe(3);
    const countOnly = await bothOk((c) => c.kv.range({ key: Buffer.from('k'), range_end: Buffer.from('l'), count_only: true }));
    expect(countOnly.kvs).toEqual([]);
    expect(countOnly.count).toBe('3');
    expect(await bothOk((c) => c.get('foo').serializable(true).string())).toBe('bar2');
  });

  it('sorts', async () => {
    const byModDesc = await bothOk((c) => c.getAll().prefix('k').sort('Mod', 'Descend').limit(2).exec());
    expect(byModDesc.kvs.map((kv) => kv.key.toString())).toEqual(['k2', 'k3']);
    expect(byModDesc.more).toBe(true);
    expect(await bothOk((c) => c.getAll().prefix('k').sort('Value', 'Ascend').keys())).toEqual(['k2', 'k3', 'k1']);
    expect(await bothOk((c) => c.getAll().prefix('k').sort('Version', 'Descend').keys())).toEqual(
      expect.arrayContaining(['k1', 'k2', 'k3']),
    );
    expect((await bothOk((c) => c.getAll().prefix('k').sort('Version', 'Descend').keys()))[0]).toBe('k2');
    expect(await bothOk((c) => c.getAll().prefix('k').sort('Create', 'Descend').keys())).toEqual(['k3', 'k2', 'k1']);
    expect(await bothOk((c) => c.getAll().prefix('k').sort('Key', 'Descend').limit(2).keys())).toEqual(['k3', 'k2']);
    expect(await bothOk((c) => c.getAll().prefix('k').sort('Key', 'None').keys())).toEqual(['k1', 'k2', 'k3']);
  });

  it('reads at old revisions and refuses future ones', async () => {
    expect(await bothOk((c) => c.get('foo').revision(2).string())).toBe('bar');
    const at7 = await bothOk((c) => c.get('foo').revision(7).exec());
    expect(str(at7.kvs)).toEqual(['foo=bar2']);
    expect(at7.header.revision).toBe('13');
    expect(await bothOk((c) => c.getAll().prefix('foo').revision(4).keys())).toEqual(['foo', 'foo1', 'foo2']);
    expect(await bothOk((c) => c.get('k2').revision(10).string())).toBe('v1');
    const future = await both((c) => c.get('foo').revision(1000).string());
    expect(future.ok).toBe(false);
    if (!future.ok) {
      expect(future.error).toBeInstanceOf(GRPCOutOfRangeError);
      expect(future.message).toContain('etcdserver: mvcc: required revision is a future revision');
    }
  });
});

describe('etcd3 client: txn', () => {
  it('compares on value, version, create and mod, taking both branches', async () => {
    // value compare true -> then
    const t1 = await bothOk((c) =>
      c.if('foo', 'Value', '==', 'bar2').then(c.put('t1').value('yes'), c.get('foo')).else(c.put('t1').value('no')).commit(),
    );
    expect(t1.succeeded).toBe(true);
    expect(t1.responses).toHaveLength(2);
    expect(t1.responses[1].response_range?.kvs.map((kv) => kv.value.toString())).toEqual(['bar2']);
    expect(await bothOk((c) => c.get('t1').string())).toBe('yes');

    // version compare false -> else with several ops
    const t2 = await bothOk((c) =>
      c.if('foo', 'Version', '==', 1).then(c.put('t2').value('yes')).else(c.put('t2').value('no'), c.get('t2'), c.delete().key('foo1')).commit(),
    );
    expect(t2.succeeded).toBe(false);
    expect(t2.responses).toHaveLength(3);
    expect(t2.responses[2].response_delete_range?.deleted).toBe('1');
    expect(await bothOk((c) => c.get('t2').string())).toBe('no');

    // two compares true (create, mod)
    const t3 = await bothOk((c) =>
      c.if('k2', 'Create', '<', 20).and('k3', 'Mod', '>', 0).then(c.getAll().prefix('k'), c.put('t3').value('both')).else(c.put('t3').value('none')).commit(),
    );
    expect(t3.succeeded).toBe(true);
    expect(t3.responses[0].response_range?.kvs.map((kv) => kv.key.toString())).toEqual(['k1', 'k2', 'k3']);

    // mod of a missing key is 0 -> else
    const t4 = await bothOk((c) => c.if('k', 'Mod', '>', 0).then(c.put('k').value('v2')).else(c.get('k')).commit());
    expect(t4.succeeded).toBe(false);
    expect(t4.responses[0].response_range?.kvs).toEqual([]);

    // create compare equal, value greater, version less: several writes in one revision
    const before = await bothOk((c) => c.get('foo').exec());
    const t5 = await bothOk((c) =>
      c
        .if('foo', 'Value', '>', 'bar')
        .and('foo', 'Version', '<', 10)
        .and('foo', 'Create', '==', 2)
        .then(c.put('tx1').value('a'), c.put('tx2').value('b'), c.delete().key('zoo'))
        .else(c.put('bad').value('1'))
        .commit(),
    );
    expect(t5.succeeded).toBe(true);
    const rev = Number(before.header.revision) + 1;
    expect(t5.header.revision).toBe(String(rev));
    const tx = await bothOk((c) => c.getAll().prefix('tx').exec());
    expect(tx.kvs.map((kv) => kv.mod_revision)).toEqual([String(rev), String(rev)]);

    // mod compare '!=' and value '<' (false) -> else
    const t6 = await bothOk((c) =>
      c.if('tx1', 'Mod', '!=', rev).and('tx2', 'Value', '<', 'a').then(c.put('t6').value('then')).else(c.put('t6').value('else')).commit(),
    );
    expect(t6.succeeded).toBe(false);
    expect(await bothOk((c) => c.get('t6').string())).toBe('else');

    // duplicate key in one branch -> error
    const dup = await both((c) => c.if('foo', 'Value', '==', 'bar2').then(c.put('dup').value('1'), c.put('dup').value('2')).commit());
    expect(dup.ok).toBe(false);
    if (!dup.ok) {
      expect(dup.error).toBeInstanceOf(GRPCInvalidArgumentError);
      expect(dup.message).toContain('etcdserver: duplicate key given in txn request');
    }
  });
});

describe('etcd3 client: delete', () => {
  it('deletes single keys, prefixes, with and without prev-kv', async () => {
    const none = await bothOk((c) => c.delete().key('foo1').exec()); // deleted by the txn above
    expect(none.deleted).toBe('0');
    const one = await bothOk((c) => c.delete().key('foo2').getPrevious());
    expect(str(one)).toEqual(['foo2=hello world']);
    const pref = await bothOk((c) => c.delete().prefix('k').getPrevious());
    expect(str(pref)).toEqual(['k1=v3', 'k2=v1b', 'k3=v2']);
    expect(pref.map((kv) => kv.version)).toEqual(['1', '2', '1']);
    const nothing = await bothOk((c) => c.delete().key('nothing-here').exec());
    expect(nothing.deleted).toBe('0');
    const range = await bothOk((c) => c.delete().inRange({ start: 'tx', end: 'tx9' }).exec());
    expect(range.deleted).toBe('2');
    expect(await bothOk((c) => c.getAll().prefix('k').count())).toBe(0);
    expect(await bothOk((c) => c.get('foo2').exists())).toBe(false);
  });
});

describe('etcd3 client: errors, large and binary data', () => {
  it('refuses a put of an empty key', async () => {
    const r = await both((c) => c.put('').value('x').exec());
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toBeInstanceOf(GRPCInvalidArgumentError);
      expect(r.message).toContain('etcdserver: key is not provided');
    }
  });

  it('stores and returns a 1 MiB value', async () => {
    await bothOk((c) => c.put('big').value(BIG).exec());
    const got = await bothOk((c) => c.get('big').buffer());
    expect(got?.length).toBe(BIG.length);
    expect(got?.equals(BIG)).toBe(true);
    const prev = await bothOk((c) => c.put('big').value(BIG.subarray(0, 1000)).getPrevious());
    expect(prev.value?.equals(BIG)).toBe(true);
  });

  it('refuses a value above the 1.5 MiB request limit', async () => {
    const r = await both((c) => c.put('too-big').value(Buffer.alloc(1_800_000, 0x61)).exec());
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toBeInstanceOf(GRPCInvalidArgumentError);
      expect(r.message).toContain('etcdserver: request is too large');
    }
  });

  it('round-trips binary keys and values', async () => {
    const keys = [
      Buffer.from([0xff, 0x00, 0x01]),
      Buffer.from([0xff, 0x00, 0xfe, 0xff]),
      Buffer.from([0xff, 0x00, 0x80, 0x00, 0x00]),
      Buffer.from([0xff, 0x00, 0xc3, 0x28]), // invalid UTF-8
    ];
    const values = keys.map((k, i) => Buffer.from(Array.from({ length: 256 }, (_, j) => (j * (i + 3) + k.length) & 0xff)));
    for (let i = 0; i < keys.length; i++) await bothOk((c) => c.put(keys[i]).value(values[i]).exec());
    const r = await bothOk((c) => c.getAll().prefix(Buffer.from([0xff, 0x00])).exec());
    const sorted = keys.map((k, i) => [k, values[i]] as const).sort((x, y) => Buffer.compare(x[0], y[0]));
    expect(r.kvs.map((kv) => kv.key.toString('hex'))).toEqual(sorted.map(([k]) => k.toString('hex')));
    expect(r.kvs.map((kv) => kv.value.toString('hex'))).toEqual(sorted.map(([, v]) => v.toString('hex')));
    expect((await bothOk((c) => c.get(keys[3]).buffer()))?.equals(values[3])).toBe(true);
    const deleted = await bothOk((c) => c.delete().key(keys[0]).getPrevious());
    expect(deleted[0].value.equals(values[0])).toBe(true);
    // A key of 0xff bytes only: its prefix range runs to the end of the key space.
    await bothOk((c) => c.put(Buffer.from([0xff, 0xff])).value(Buffer.from([0])).exec());
    const ff = await bothOk((c) => c.getAll().prefix(Buffer.from([0xff, 0xff])).keyBuffers());
    expect(ff.map((k) => k.toString('hex'))).toEqual(['ffff']);
  });
});

describe('etcd3 client: compaction', () => {
  it('compacts, then reads below the compacted revision fail with the compacted error', async () => {
    await bothOk((c) => c.put('cmp').value('1').exec());
    const p2 = await bothOk((c) => c.put('cmp').value('2').exec());
    const rev = Number(p2.header.revision);
    await bothOk((c) => c.put('cmp').value('3').exec());
    await bothOk((c) => c.kv.compact({ revision: rev, physical: true }));
    // At the compaction revision: still readable.
    expect(await bothOk((c) => c.get('cmp').revision(rev).string())).toBe('2');
    // Below it: compacted.
    for (const at of [rev - 1, 2]) {
      const r = await both((c) => c.get('cmp').revision(at).string());
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error).toBeInstanceOf(GRPCOutOfRangeError);
        expect(r.message).toContain('etcdserver: mvcc: required revision has been compacted');
      }
    }
    // Compacting again at the same or an older revision is refused the same way.
    for (const at of [rev, rev - 2]) {
      const r = await both((c) => c.kv.compact({ revision: at }));
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error).toBeInstanceOf(GRPCOutOfRangeError);
        expect(r.message).toContain('etcdserver: mvcc: required revision has been compacted');
      }
    }
    // Compacting to a future revision is refused.
    const fut = await both((c) => c.kv.compact({ revision: rev + 1000 }));
    expect(fut.ok).toBe(false);
    if (!fut.ok) expect(fut.message).toContain('etcdserver: mvcc: required revision is a future revision');
    // Current data is intact.
    expect(await bothOk((c) => c.get('cmp').string())).toBe('3');
    expect(await bothOk((c) => c.get('foo').string())).toBe('bar2');
  });
});
