// The backend queues writes for one LevelDB batch per commit. On classic-level they go
// straight into its native WriteBatch (backend.ts, PendingWrites); any other Level gets
// them as an array for db.batch(). Both must land the same writes, in order, once.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Backend } from '../../src/mvcc/backend';
import { tempDir } from '../support/tmp';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function open(): Promise<{ backend: Backend; dir: string }> {
  const t = tempDir('backend');
  cleanups.push(t.cleanup);
  const backend = await Backend.open(t.path, (e) => {
    throw e;
  });
  cleanups.push(() => backend.close());
  return { backend, dir: t.path };
}

async function writeAndRead(backend: Backend): Promise<Record<string, string>> {
  const b = (s: string): Buffer => Buffer.from(s);
  backend.put(b('a'), b('1'));
  backend.put(b('b'), b('2'));
  backend.del(b('a'));
  backend.put(b('c'), b('3'));
  const first = backend.commit();
  backend.put(b('a'), b('4')); // after the commit took its batch: goes in the next one
  backend.del(b('c'));
  await first;
  await backend.commit();
  backend.flushHook = () => [{ type: 'put', key: b('meta'), value: b('m') }];
  await backend.commit(); // the hook's ops alone make a batch
  const out: Record<string, string> = {};
  for await (const [k, v] of backend.db.iterator()) out[k.toString()] = v.toString();
  return out;
}

describe('backend batches', () => {
  it('go through classic-level\'s native batch, in order', async () => {
    const { backend } = await open();
    const spy = vi.spyOn(backend.db as unknown as { _chainedBatch: () => unknown }, '_chainedBatch');
    expect(await writeAndRead(backend)).toEqual({ a: '4', b: '2', meta: 'm' });
    expect(spy).toHaveBeenCalledTimes(3); // one native batch per commit that had writes
  });

  it('fall back to db.batch() where the native batch is not there', async () => {
    const { backend } = await open();
    (backend.db as unknown as { _chainedBatch: unknown })._chainedBatch = undefined;
    const batch = vi.spyOn(backend.db, 'batch');
    expect(await writeAndRead(backend)).toEqual({ a: '4', b: '2', meta: 'm' });
    expect(batch).toHaveBeenCalledTimes(3);
  });

  it('survive a reopen once committed with sync', async () => {
    const { backend, dir } = await open();
    backend.put(Buffer.from('k'), Buffer.from('v'));
    await backend.sync();
    await backend.close();
    const again = await Backend.open(dir, (e) => {
      throw e;
    });
    cleanups.push(() => again.close());
    expect((await again.get(Buffer.from('k')))?.toString()).toBe('v');
  });
});
