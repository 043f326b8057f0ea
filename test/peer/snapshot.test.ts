import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { INBOUND_SNAPSHOTS_MAX, SNAPSHOT_INBOX_BYTES_MAX } from '../../src/peer';
import { range, sleep, startMember, waitFor, type Member } from './helpers';

const running: Member[] = [];
async function member(...args: Parameters<typeof startMember>): Promise<Member> {
  const m = await startMember(...args);
  running.push(m);
  return m;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.t.stop()));
});

const MiB = 1024 * 1024;

/** `total` bytes of random data in chunks of `chunkBytes`, hashed as they are produced. */
function source(total: number, chunkBytes: number, progress: { produced: number }, hash = createHash('sha256')) {
  return {
    hash,
    data: (async function* () {
      while (progress.produced < total) {
        const chunk = randomBytes(Math.min(chunkBytes, total - progress.produced));
        hash.update(chunk);
        progress.produced += chunk.length;
        yield chunk;
      }
    })(),
  };
}

describe('peer snapshot streams', () => {
  it('a 50 MB snapshot arrives intact, with the sender held back by a slow receiver', async () => {
    const TOTAL = 50 * MiB;
    const progress = { produced: 0 };
    let consumed = 0;
    let aheadMaxBytes = 0;
    let received: { from: bigint; metadata: string; sha256: string; bytes: number } | undefined;
    const b = await member(2n, {}, {
      async onSnapshot(from, metadata, data) {
        const hash = createHash('sha256');
        let stalled = false;
        for await (const chunk of data) {
          hash.update(chunk);
          consumed += chunk.length;
          aheadMaxBytes = Math.max(aheadMaxBytes, progress.produced - consumed);
          if (!stalled && consumed > 5 * MiB) {
            stalled = true;
            await sleep(300); // the sender must stop producing meanwhile
          }
        }
        received = { from, metadata: Buffer.from(metadata).toString(), sha256: hash.digest('hex'), bytes: consumed };
      },
    });
    const a = await member(1n);
    a.t.addPeer(2n, [b.url]);
    // Chunks of 3 MiB from the source are cut into 256 KiB frames on the wire.
    const src = source(TOTAL, 3 * MiB, progress);
    await a.t.sendSnapshot(2n, Buffer.from('index=42 term=7'), src.data);
    expect(received).toEqual({ from: 1n, metadata: 'index=42 term=7', sha256: src.hash.digest('hex'), bytes: TOTAL });
    // Produced but not yet consumed = one source chunk + one frame + kernel socket buffers + the
    // receiver's inbox: bounded, whatever the snapshot size (12.5 MiB measured on loopback TCP).
    expect(aheadMaxBytes).toBeGreaterThan(5 * MiB); // the receiver did fall behind...
    expect(aheadMaxBytes).toBeLessThan(3 * MiB + SNAPSHOT_INBOX_BYTES_MAX + 16 * MiB); // ...and the sender waited
    expect(b.log.has('snapshot installed')).toBe(true);
  });

  it('a failing onSnapshot rejects the sender with the receiver’s reason', async () => {
    const b = await member(2n, {}, {
      async onSnapshot(_from, _metadata, data) {
        let n = 0;
        for await (const chunk of data) {
          n += chunk.length;
          if (n > 2 * MiB) throw new Error('disk full while installing');
        }
      },
    });
    const a = await member(1n);
    a.t.addPeer(2n, [b.url]);
    const progress = { produced: 0 };
    await expect(a.t.sendSnapshot(2n, Buffer.from('m'), source(20 * MiB, MiB, progress).data)).rejects.toThrow(
      'member 2 failed to install the snapshot: disk full while installing',
    );
    expect(progress.produced).toBeLessThan(20 * MiB); // the sender stopped early
    expect(b.log.has('snapshot install failed', 'disk full')).toBe(true);
    // The connection and the receiving slot are released: another snapshot goes through.
    const ok = await member(3n, {}, { onSnapshot: async (_f, _m, data) => void (await drain(data)) });
    a.t.addPeer(3n, [ok.url]);
    await a.t.sendSnapshot(3n, Buffer.from('m'), source(MiB, 64 * 1024, { produced: 0 }).data);
  });

  it('a handler that fails after reading everything rejects the sender too', async () => {
    const b = await member(2n, {}, {
      async onSnapshot(_from, _metadata, data) {
        await drain(data);
        throw new Error('bad snapshot checksum');
      },
    });
    const a = await member(1n);
    a.t.addPeer(2n, [b.url]);
    await expect(a.t.sendSnapshot(2n, Buffer.alloc(0), source(MiB, 100_000, { produced: 0 }).data)).rejects.toThrow(/bad snapshot checksum/);
  });

  it('a sender whose data source fails breaks the receiver’s stream with an error', async () => {
    let receiverError = '';
    const b = await member(2n, {}, {
      async onSnapshot(_from, _metadata, data) {
        try {
          await drain(data);
        } catch (err) {
          receiverError = (err as Error).message;
          throw err;
        }
      },
    });
    const a = await member(1n);
    a.t.addPeer(2n, [b.url]);
    async function* failing() {
      yield randomBytes(1000);
      throw new Error('snapshot file vanished');
    }
    await expect(a.t.sendSnapshot(2n, Buffer.alloc(0), failing())).rejects.toThrow('snapshot file vanished');
    await waitFor(() => receiverError !== '', 'the receiver to see the break');
    expect(receiverError).toMatch(/snapshot stream from member 1 broke before its end/);
  });

  it('a snapshot to an unreachable peer, or to an unknown member, rejects', async () => {
    const a = await member(1n);
    a.t.addPeer(2n, ['http://127.0.0.1:1']);
    await expect(a.t.sendSnapshot(2n, Buffer.alloc(0), source(10, 10, { produced: 0 }).data)).rejects.toThrow(
      /could not open a snapshot stream to member 2: .*ECONNREFUSED/,
    );
    await expect(a.t.sendSnapshot(5n, Buffer.alloc(0), source(10, 10, { produced: 0 }).data)).rejects.toThrow('member 5 is not a peer');
  });

  it('one snapshot at a time per peer; an aborted send rejects', async () => {
    const b = await member(2n, {}, { onSnapshot: () => new Promise(() => undefined) }); // never installs
    const a = await member(1n);
    a.t.addPeer(2n, [b.url]);
    const abort = new AbortController();
    const first = a.t.sendSnapshot(2n, Buffer.alloc(0), source(MiB, 1000, { produced: 0 }).data, abort.signal).then(
      () => 'resolved',
      (err: Error) => err.message,
    );
    await expect(a.t.sendSnapshot(2n, Buffer.alloc(0), source(10, 10, { produced: 0 }).data)).rejects.toThrow(
      'a snapshot is already being sent to member 2',
    );
    await sleep(50);
    abort.abort();
    expect(await first).toBe('snapshot stream to member 2 ended before its result: aborted');
  });

  it(`at most ${INBOUND_SNAPSHOTS_MAX} snapshots are received at once; the next sender is told to retry later`, async () => {
    const b = await member(99n, {}, { onSnapshot: () => new Promise(() => undefined) });
    const senders = await Promise.all(range(1, INBOUND_SNAPSHOTS_MAX + 2).map((i) => member(BigInt(i))));
    const outcomes = senders.map((s) => {
      s.t.addPeer(99n, [b.url]);
      return s.t.sendSnapshot(99n, Buffer.alloc(0), source(MiB, 1000, { produced: 0 }).data).then(
        () => 'resolved',
        (err: Error) => err.message,
      );
    });
    await waitFor(() => b.log.lines.filter((l) => l.msg === 'receiving snapshot').length === INBOUND_SNAPSHOTS_MAX, 'receivers busy');
    const refused = await Promise.race(outcomes);
    expect(refused).toMatch(/refused by the peer: too many snapshots being received; retry later/);
    await b.t.stop();
    const all = await Promise.all(outcomes);
    expect(all.filter((o) => o.includes('ended before its result')).length).toBe(INBOUND_SNAPSHOTS_MAX);
  });

  it('stop() rejects a snapshot in flight', async () => {
    const b = await member(2n, { }, { onSnapshot: () => new Promise(() => undefined) }); // never installs
    const a = await member(1n);
    a.t.addPeer(2n, [b.url]);
    const outcome = a.t.sendSnapshot(2n, Buffer.alloc(0), source(MiB, 1000, { produced: 0 }).data).then(
      () => 'resolved',
      (err: Error) => err.message,
    );
    await sleep(100);
    await a.t.stop();
    expect(await outcome).toBe('snapshot stream to member 2 ended before its result: transport stopped');
  });
});

async function drain(data: AsyncIterable<Buffer>): Promise<number> {
  let n = 0;
  for await (const chunk of data) n += chunk.length;
  return n;
}
