import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCairn, type ServerProc } from '../../../bench/lib/procs';
import { Client, ErrSTMConflict, runSTM, type Isolation } from '../../../src/client';
import { sleep } from './helpers';

// STM against a real cairn: concurrent bank transfers keep the total constant.

describe('STM on cairn', () => {
  let server: ServerProc;
  const clients: Client[] = [];
  const client = (): Client => {
    const c = new Client({ endpoints: [server.endpoint] });
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    server = await startCairn();
  });
  afterAll(async () => {
    for (const c of clients.splice(0)) c.close();
    await server?.stop();
  });

  for (const isolation of ['serializable-snapshot', 'serializable', 'repeatable-read'] as Isolation[]) {
    it(`${isolation}: 8 workers x 25 concurrent transfers keep the total`, async () => {
      const accounts = 5;
      const initial = 100;
      const pfx = `bank-${isolation}/`;
      const setup = client();
      for (let i = 0; i < accounts; i++) await setup.put(`${pfx}${i}`, String(initial));
      let attempts = 0;
      let committed = 0;
      const worker = async (w: number): Promise<void> => {
        const c = client();
        for (let t = 0; t < 25; t++) {
          const from = `${pfx}${(w + t) % accounts}`;
          const to = `${pfx}${(w + 2 * t + 1) % accounts}`;
          if (from === to) continue;
          const amount = 1 + ((w * 7 + t) % 9);
          await runSTM(
            c,
            async (stm) => {
              attempts++;
              const a = Number(await stm.get(from));
              await sleep(Math.random() * 3); // widen the race window
              const b = Number(await stm.get(to));
              if (a < amount) return; // insufficient funds: commit nothing
              stm.put(from, String(a - amount));
              stm.put(to, String(b + amount));
            },
            { isolation, maxAttempts: 1_000 },
          );
          committed++;
        }
      };
      await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
      const r = await setup.get({ key: pfx, prefix: true });
      const balances = r.kvs.map((kv) => Number(kv.valueString()));
      expect(balances).toHaveLength(accounts);
      expect(balances.reduce((x, y) => x + y, 0)).toBe(accounts * initial);
      for (const b of balances) expect(b).toBeGreaterThanOrEqual(0);
      expect(attempts).toBeGreaterThan(committed); // there were conflicts, and they were retried
    });
  }

  it('serializable-snapshot reads at the first read revision; conflicts retry; bounded retries', async () => {
    const c = client();
    await c.put('snap/a', '1');
    await c.put('snap/b', '1');
    let runs = 0;
    const seen: string[] = [];
    await runSTM(c, async (stm) => {
      runs++;
      const a = await stm.get('snap/a');
      if (runs === 1) await client().put('snap/b', '2'); // after the snapshot was taken
      const b = await stm.get('snap/b');
      seen.push(`${a}${b}`);
      stm.put('snap/sum', String(Number(a) + Number(b)));
    });
    // The first run read b at the snapshot ('1'), its commit conflicted, the second run saw '2'.
    expect(seen).toEqual(['11', '12']);
    expect(await c.getString('snap/sum')).toBe('3');

    // A writer that always interferes exhausts the attempts.
    const other = client();
    await expect(
      runSTM(
        c,
        async (stm) => {
          const v = await stm.get('snap/a');
          await other.put('snap/a', String(Number(v) + 1));
          stm.put('snap/a', 'mine');
        },
        { maxAttempts: 3 },
      ),
    ).rejects.toBeInstanceOf(ErrSTMConflict);
    expect(await c.getString('snap/a')).not.toBe('mine');

    // Writes of an STM become visible to its own reads; nothing is written when apply throws.
    await expect(
      runSTM(c, async (stm) => {
        stm.put('snap/x', 'buffered');
        expect(await stm.get('snap/x')).toBe('buffered');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await c.getString('snap/x')).toBeNull();

    // serializable-snapshot also guards written-but-unread keys against writes after the snapshot.
    let blind = 0;
    await runSTM(c, async (stm) => {
      blind++;
      await stm.get('snap/a');
      if (blind === 1) await other.put('snap/blind', 'theirs');
      stm.put('snap/blind', 'ours');
    });
    expect(blind).toBe(2);
    expect(await c.getString('snap/blind')).toBe('ours');
  });
});
