import { afterEach, describe, expect, it } from 'vitest';
import { Backend } from '../../src/mvcc/backend';
import { MvccStore } from '../../src/mvcc/store';
import { EventType, KeyValue, MvccError } from '../../src/mvcc/types';
import { tempDir } from '../support/tmp';

const b = (s: string): Buffer => Buffer.from(s);
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function openStore(path?: string): Promise<{ store: MvccStore; path: string; reopen: () => Promise<MvccStore> }> {
  let dir = path;
  if (dir === undefined) {
    const t = tempDir('mvcc');
    cleanups.push(t.cleanup);
    dir = t.path;
  }
  const fatal = (e: Error): never => {
    throw e;
  };
  let backend = await Backend.open(dir, fatal);
  let store = await MvccStore.open(backend);
  cleanups.push(() => backend.close());
  return {
    store,
    path: dir,
    reopen: async () => {
      await store.settle();
      await backend.close();
      backend = await Backend.open(dir!, fatal);
      store = await MvccStore.open(backend);
      cleanups.push(() => backend.close());
      return store;
    },
  };
}

function put(store: MvccStore, key: string, value: string, lease = 0n): number {
  const t = store.write();
  t.put(b(key), b(value), lease);
  return t.end();
}

function del(store: MvccStore, key: string, end?: string): number {
  const t = store.write();
  t.deleteRange(b(key), end === undefined ? undefined : b(end));
  return t.end();
}

const show = (kvs: KeyValue[]): string[] => kvs.map((kv) => `${kv.key}=${kv.value}@c${kv.createRevision}m${kv.modRevision}v${kv.version}`);

describe('mvcc revisions', () => {
  it('a fresh store is at revision 1 and each write transaction takes the next revision', async () => {
    const { store } = await openStore();
    expect(store.currentRevision).toBe(1);
    expect(put(store, 'a', '1')).toBe(2);
    expect(put(store, 'a', '2')).toBe(3);
    expect(show(store.rangeCurrent(b('a'), undefined).kvs)).toEqual(['a=2@c2m3v2']);
  });

  it('a transaction with several changes takes one revision with sub revisions', async () => {
    const { store } = await openStore();
    const t = store.write();
    t.put(b('a'), b('1'), 0n);
    t.put(b('b'), b('2'), 0n);
    expect(show(t.range(b('a'), b('z')).kvs)).toEqual(['a=1@c2m2v1', 'b=2@c2m2v1']);
    expect(t.end()).toBe(2);
    expect(store.currentRevision).toBe(2);
  });

  it('a delete writes a tombstone and a re-created key starts again at version 1', async () => {
    const { store } = await openStore();
    put(store, 'k', 'v1'); // 2
    put(store, 'k', 'v2'); // 3
    expect(del(store, 'k')).toBe(4);
    expect(store.rangeCurrent(b('k'), undefined).kvs).toEqual([]);
    put(store, 'k', 'v3'); // 5
    expect(show(store.rangeCurrent(b('k'), undefined).kvs)).toEqual(['k=v3@c5m5v1']);
    expect(show((await store.range(b('k'), undefined, { revision: 3 })).kvs)).toEqual(['k=v2@c2m3v2']);
    expect((await store.range(b('k'), undefined, { revision: 4 })).kvs).toEqual([]);
  });

  it('deleting nothing does not take a revision', async () => {
    const { store } = await openStore();
    expect(del(store, 'missing')).toBe(1);
    expect(store.currentRevision).toBe(1);
  });

  it('delete events carry the key and the tombstone revision, put events the new value', async () => {
    const { store } = await openStore();
    const seen: string[] = [];
    store.onEvents((evs, rev) => {
      for (const e of evs) seen.push(`${rev}:${e.type === EventType.Put ? 'PUT' : 'DELETE'}:${e.kv.key}:${e.kv.modRevision}:${e.prevKv?.value ?? '-'}`);
    });
    put(store, 'x', '1');
    del(store, 'x');
    expect(seen).toEqual(['2:PUT:x:2:-', '3:DELETE:x:3:1']);
  });
});

describe('mvcc ranges', () => {
  it('follows etcd range conventions: single key, [key, end), "\\0" as end, limit and count', async () => {
    const { store } = await openStore();
    for (const k of ['a', 'b', 'c', 'd']) put(store, k, k);
    expect(show(store.rangeCurrent(b('b'), undefined).kvs).length).toBe(1);
    expect(store.rangeCurrent(b('b'), b('d')).kvs.map((kv) => kv.key.toString())).toEqual(['b', 'c']);
    expect(store.rangeCurrent(b('b'), Buffer.of(0)).kvs.map((kv) => kv.key.toString())).toEqual(['b', 'c', 'd']);
    expect(store.rangeCurrent(Buffer.of(0), Buffer.of(0)).count).toBe(4);
    const limited = store.rangeCurrent(b('a'), b('z'), { limit: 2 });
    expect(limited.kvs.length).toBe(2);
    expect(limited.count).toBe(4);
    const counted = store.rangeCurrent(b('a'), b('z'), { countOnly: true });
    expect(counted.kvs).toEqual([]);
    expect(counted.count).toBe(4);
    expect(store.rangeCurrent(b('d'), b('b')).kvs).toEqual([]);
  });

  it('orders keys as bytes, including bytes above 0x7f', async () => {
    const { store } = await openStore();
    for (const k of [Buffer.of(0xff), Buffer.of(0x01), Buffer.of(0x80, 0x00), Buffer.of(0x7f)]) {
      const t = store.write();
      t.put(k, b('v'), 0n);
      t.end();
    }
    expect(store.rangeCurrent(Buffer.of(0), Buffer.of(0)).kvs.map((kv) => kv.key.toString('hex'))).toEqual(['01', '7f', '8000', 'ff']);
  });

  it('reads at a past revision and rejects future revisions', async () => {
    const { store } = await openStore();
    put(store, 'a', '1');
    put(store, 'a', '2');
    expect(show((await store.range(b('a'), undefined, { revision: 2 })).kvs)).toEqual(['a=1@c2m2v1']);
    await expect(store.range(b('a'), undefined, { revision: 9 })).rejects.toThrow('mvcc: required revision is a future revision');
  });
});

describe('mvcc compaction', () => {
  it('keeps the newest revision at or below the compaction point and fails older reads', async () => {
    const { store } = await openStore();
    put(store, 'a', '1'); // 2
    put(store, 'a', '2'); // 3
    put(store, 'b', '1'); // 4
    del(store, 'b'); // 5
    put(store, 'a', '3'); // 6
    await store.compact(4).physical;
    await expect(store.range(b('a'), undefined, { revision: 3 })).rejects.toThrow(MvccError);
    await expect(store.range(b('a'), undefined, { revision: 3 })).rejects.toThrow('mvcc: required revision has been compacted');
    expect(show((await store.range(b('a'), b('z'), { revision: 4 })).kvs)).toEqual(['a=2@c2m3v2', 'b=1@c4m4v1']);
    expect(show((await store.range(b('a'), b('z'), { revision: 5 })).kvs)).toEqual(['a=2@c2m3v2']);
    expect(() => store.compact(4)).toThrow('compacted');
    expect(() => store.compact(99)).toThrow('future');
  });

  it('physically removes old versions from LevelDB', async () => {
    const { store } = await openStore();
    for (let i = 0; i < 50; i++) put(store, 'k', `v${i}`);
    await store.settle();
    const before = store.stats().dbSizeBytes;
    await store.compact(store.currentRevision).physical;
    expect(store.stats().dbSizeBytes).toBeLessThan(before / 10);
  });
});

describe('mvcc compaction of a key back to one revision', () => {
  it('keeps its create revision and version, its reads at every revision still held, and its next put', async () => {
    const { store, reopen } = await openStore();
    put(store, 'a', '1'); // 2
    put(store, 'a', '2'); // 3
    put(store, 'a', '3'); // 4
    put(store, 'b', '1'); // 5
    await store.compact(5).physical; // a keeps only its revision 4
    expect(show((await store.range(b('a'), undefined, { revision: 5 })).kvs)).toEqual(['a=3@c2m4v3']);
    expect(show(store.rangeCurrent(b('a'), b('c')).kvs)).toEqual(['a=3@c2m4v3', 'b=1@c5m5v1']);
    expect(put(store, 'a', '4')).toBe(6);
    expect(show((await store.range(b('a'), undefined, { revision: 5 })).kvs)).toEqual(['a=3@c2m4v3']);
    expect(show(store.rangeCurrent(b('a'), undefined).kvs)).toEqual(['a=4@c2m6v4']);
    del(store, 'a'); // 7
    const again = await reopen();
    expect(again.rangeCurrent(b('a'), undefined).count).toBe(0);
    expect(show((await again.range(b('a'), undefined, { revision: 6 })).kvs)).toEqual(['a=4@c2m6v4']);
    expect(show((await again.range(b('a'), undefined, { revision: 5 })).kvs)).toEqual(['a=3@c2m4v3']);
    expect(put(again, 'a', '5')).toBe(8);
    expect(show(again.rangeCurrent(b('a'), b('c')).kvs)).toEqual(['a=5@c8m8v1', 'b=1@c5m5v1']);
  });
});

describe('mvcc live keys with leases', () => {
  it('forEachLeased visits exactly the live keys that carry a lease, after a restart too', async () => {
    const { store, reopen } = await openStore();
    put(store, 'a', '1', 7n);
    put(store, 'b', '1');
    put(store, 'c', '1', -2n); // a lease ID is a full int64
    put(store, 'd', '1', 7n);
    del(store, 'd');
    put(store, 'b', '2', 9n);
    const seen = (s: MvccStore): string[] => {
      const out: string[] = [];
      s.forEachLeased((key, lease) => out.push(`${key}:${lease}`));
      return out;
    };
    expect(seen(store)).toEqual(['a:7', 'b:9', 'c:-2']);
    expect(seen(await reopen())).toEqual(['a:7', 'b:9', 'c:-2']);
  });
});

describe('mvcc restart', () => {
  it('rebuilds revisions, history and the compaction point from LevelDB', async () => {
    const { store, reopen } = await openStore();
    put(store, 'a', '1'); // 2
    put(store, 'a', '2'); // 3
    del(store, 'a'); // 4
    put(store, 'b', '1'); // 5
    store.compact(3);
    store.setConsistentIndex(42);
    const again = await reopen();
    expect(again.currentRevision).toBe(5);
    expect(again.compactRevision).toBe(3);
    expect(again.consistentIndex).toBe(42);
    expect(show(again.rangeCurrent(b('a'), b('z')).kvs)).toEqual(['b=1@c5m5v1']);
    expect(show((await again.range(b('a'), undefined, { revision: 3 })).kvs)).toEqual(['a=2@c2m3v2']);
    expect(put(again, 'a', 'x')).toBe(6);
    expect(show(again.rangeCurrent(b('a'), undefined).kvs)).toEqual(['a=x@c6m6v1']);
  });

  it('keeps the current revision when compaction removed the newest records', async () => {
    const { store, reopen } = await openStore();
    put(store, 'a', '1'); // 2
    del(store, 'a'); // 3
    await store.compact(3).physical;
    const again = await reopen();
    expect(again.currentRevision).toBe(3);
    expect(put(again, 'a', '2')).toBe(4);
  });
});
