import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../support/tmp';
import { freePort, range, seqMessage, seqs, sleep, startMember, waitFor, type Member } from './helpers';

const running: Member[] = [];
async function member(...args: Parameters<typeof startMember>): Promise<Member> {
  const m = await startMember(...args);
  running.push(m);
  return m;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.t.stop()));
});

describe('peer message streams', () => {
  it('messages flow both ways between three members, in send order', async () => {
    const ms = [await member(1n), await member(2n), await member(3n)];
    for (const a of ms) for (const b of ms) if (a !== b) a.t.addPeer(b.id, [b.url]);
    const N = 2000;
    for (let i = 0; i < N; i++) for (const a of ms) for (const b of ms) if (a !== b) a.t.send(b.id, seqMessage(i, 1 + (i % 300)));
    for (const b of ms) {
      for (const a of ms) {
        if (a === b) continue;
        await waitFor(() => (b.received.get(a.id)?.length ?? 0) >= N, `${N} messages ${a.id} -> ${b.id}`);
        expect(seqs(b.received.get(a.id))).toEqual(range(0, N));
        expect(b.received.get(a.id)![7]!.length).toBe(8); // lengths preserved
      }
    }
    for (const a of ms) for (const b of ms) if (a !== b) expect(a.t.isActive(b.id)).toBe(true);
    const s = ms[0]!.t.stats().get(2n)!;
    expect(s).toMatchObject({ connected: true, dropped: 0, sent: N, queued: 0 });
    await waitFor(() => ms[0]!.t.stats().get(2n)!.rttSeconds !== undefined, 'a ping round trip');
    expect(ms[0]!.t.stats().get(2n)!.rttSeconds).toBeLessThan(1);
  });

  it('many small sends in one turn coalesce into few batch frames', async () => {
    const a = await member(1n);
    const b = await member(2n);
    a.t.addPeer(2n, [b.url]);
    await waitFor(() => a.t.isActive(2n), 'connection');
    const before = a.t.stats().get(2n)!.batches;
    for (let i = 0; i < 4000; i++) a.t.send(2n, seqMessage(i, 16));
    await waitFor(() => (b.received.get(1n)?.length ?? 0) === 4000, 'all messages');
    expect(seqs(b.received.get(1n))).toEqual(range(0, 4000));
    // 4000 x 20 bytes = 80 KB: one 1 MiB batch frame holds them all.
    expect(a.t.stats().get(2n)!.batches - before).toBe(1);
    expect(a.t.stats().get(2n)!.sent).toBe(4000);
  });

  it('batches are cut at batchBytesMax', async () => {
    const a = await member(1n, { batchBytesMax: 1000 });
    const b = await member(2n);
    a.t.addPeer(2n, [b.url]);
    await waitFor(() => a.t.isActive(2n), 'connection');
    for (let i = 0; i < 100; i++) a.t.send(2n, seqMessage(i, 96)); // 100 bytes each with length
    await waitFor(() => (b.received.get(1n)?.length ?? 0) === 100, 'all messages');
    expect(a.t.stats().get(2n)!.batches).toBe(10);
    expect(seqs(b.received.get(1n))).toEqual(range(0, 100));
  });

  it('a peer that is down: sends past the queue bound are dropped and counted, then delivery resumes', async () => {
    const port = await freePort();
    const a = await member(1n, { queueMessagesMax: 100 });
    a.t.addPeer(2n, [`http://127.0.0.1:${port}`]);
    for (let i = 0; i < 1000; i++) a.t.send(2n, seqMessage(i, 1024));
    await sleep(300); // several failed dials with backoff
    const down = a.t.stats().get(2n)!;
    expect(down).toMatchObject({ connected: false, queued: 100, dropped: 900, sent: 0 });
    expect(down.lastError).toMatch(/ECONNREFUSED/);
    expect(a.t.isActive(2n)).toBe(false);
    // A refused dial repeats, but is logged once.
    expect(a.log.lines.filter((l) => l.msg === 'peer stream failed').length).toBe(1);

    const b = await member(2n, { listenUrls: [`http://127.0.0.1:${port}`] });
    await waitFor(() => (b.received.get(1n)?.length ?? 0) === 100, 'queued messages after the peer came up');
    expect(seqs(b.received.get(1n))).toEqual(range(0, 100)); // the oldest were kept, the newest dropped
    a.t.send(2n, seqMessage(5000));
    await waitFor(() => (b.received.get(1n)?.length ?? 0) === 101, 'a fresh message');
    expect(a.t.stats().get(2n)).toMatchObject({ connected: true, dropped: 900, sent: 101, lastError: undefined });
  });

  it('the queue is bounded in bytes as well as in messages', async () => {
    const port = await freePort();
    const a = await member(1n, { queueBytesMax: 10_000 });
    a.t.addPeer(2n, [`http://127.0.0.1:${port}`]);
    for (let i = 0; i < 100; i++) a.t.send(2n, seqMessage(i, 1000));
    expect(a.t.stats().get(2n)).toMatchObject({ queued: 10, dropped: 90 });
  });

  it('a peer restarting on the same port is reconnected to, and messages flow again', async () => {
    const a = await member(1n);
    let b = await member(2n);
    const port = Number(new URL(b.url).port);
    a.t.addPeer(2n, [b.url]);
    for (let i = 0; i < 10; i++) a.t.send(2n, seqMessage(i));
    await waitFor(() => (b.received.get(1n)?.length ?? 0) === 10, 'first messages');
    await b.t.stop();
    await waitFor(() => !a.t.stats().get(2n)!.connected, 'the disconnect to be noticed');
    expect(a.log.has('peer stream disconnected')).toBe(true);
    await sleep(200);
    b = await member(2n, { listenUrls: [`http://127.0.0.1:${port}`] });
    await waitFor(() => a.t.isActive(2n), 'reconnection');
    for (let i = 10; i < 20; i++) a.t.send(2n, seqMessage(i));
    await waitFor(() => (b.received.get(1n)?.length ?? 0) === 10, 'messages after restart');
    expect(seqs(b.received.get(1n))).toEqual(range(10, 20));
  });

  it('tries the peer URLs in turn when the first is dead', async () => {
    const dead = await freePort();
    const a = await member(1n);
    const b = await member(2n);
    a.t.addPeer(2n, [`http://127.0.0.1:${dead}`, b.url]);
    for (let i = 0; i < 50; i++) a.t.send(2n, seqMessage(i));
    await waitFor(() => (b.received.get(1n)?.length ?? 0) === 50, 'messages over the second URL');
    expect(seqs(b.received.get(1n))).toEqual(range(0, 50));
  });

  it('updatePeer moves the stream to the new URL', async () => {
    const a = await member(1n);
    const b = await member(2n, { listenUrls: ['http://127.0.0.1:0', 'http://127.0.0.1:0'] });
    expect(b.urls).toHaveLength(2);
    a.t.addPeer(2n, [b.urls[0]!]);
    a.t.send(2n, seqMessage(1));
    await waitFor(() => (b.received.get(1n)?.length ?? 0) === 1, 'first message');
    a.t.updatePeer(2n, [b.urls[1]!]);
    a.t.send(2n, seqMessage(2));
    await waitFor(() => (b.received.get(1n)?.length ?? 0) === 2, 'message after update');
    const connects = a.log.lines.filter((l) => l.msg === 'peer stream connected').map((l) => l.url);
    expect(connects).toEqual([b.urls[0], b.urls[1]]);
  });

  it('a peer added without URLs queues until updatePeer gives it one', async () => {
    const a = await member(1n);
    const b = await member(2n);
    a.t.addPeer(2n, []);
    a.t.send(2n, seqMessage(1));
    await sleep(50);
    expect(a.t.stats().get(2n)).toMatchObject({ connected: false, queued: 1 });
    a.t.updatePeer(2n, [b.url]);
    await waitFor(() => (b.received.get(1n)?.length ?? 0) === 1, 'the queued message');
  });

  it('a message larger than a batch goes in a frame of its own, between its neighbours', async () => {
    const a = await member(1n, { batchBytesMax: 64 * 1024 });
    const b = await member(2n);
    a.t.addPeer(2n, [b.url]);
    await waitFor(() => a.t.isActive(2n), 'connection');
    a.t.send(2n, seqMessage(0));
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    big.writeUInt32BE(1, 0);
    a.t.send(2n, big);
    a.t.send(2n, seqMessage(2));
    await waitFor(() => (b.received.get(1n)?.length ?? 0) === 3, 'all three');
    expect(seqs(b.received.get(1n))).toEqual([0, 1, 2]);
    expect(b.received.get(1n)![1]!.equals(big)).toBe(true);
    expect(a.t.stats().get(2n)!.batches).toBe(3);
  });

  it('unix:// URLs, absolute and relative, carry messages', async () => {
    const dir = tempDir('peer-unix');
    const cwd = process.cwd();
    try {
      const abs = `unix://${join(dir.path, 'a.sock')}`;
      process.chdir(dir.path);
      const a = await member(1n, { listenUrls: [abs] });
      const b = await member(2n, { listenUrls: ['unix://b.sock'] });
      expect(b.url).toBe('unix://b.sock');
      a.t.addPeer(2n, ['unix://b.sock']);
      b.t.addPeer(1n, [abs]);
      for (let i = 0; i < 100; i++) {
        a.t.send(2n, seqMessage(i));
        b.t.send(1n, seqMessage(i));
      }
      await waitFor(() => (b.received.get(1n)?.length ?? 0) === 100 && (a.received.get(2n)?.length ?? 0) === 100, 'messages');
      expect(seqs(b.received.get(1n))).toEqual(range(0, 100));
      expect(seqs(a.received.get(2n))).toEqual(range(0, 100));
    } finally {
      process.chdir(cwd);
      await Promise.all(running.splice(0).map((m) => m.t.stop()));
      dir.cleanup();
    }
  });

  it('a stale unix socket file left by a killed process is replaced', async () => {
    const dir = tempDir('peer-unix-stale');
    try {
      const path = join(dir.path, 'm.sock');
      await makeDeadSocketFile(path);
      expect(existsSync(path)).toBe(true);
      const a = await member(1n, { listenUrls: [`unix://${path}`] });
      const b = await member(2n);
      b.t.addPeer(1n, [`unix://${path}`]);
      b.t.send(1n, seqMessage(7));
      await waitFor(() => (a.received.get(2n)?.length ?? 0) === 1, 'message over the reclaimed socket');
    } finally {
      await Promise.all(running.splice(0).map((m) => m.t.stop()));
      dir.cleanup();
    }
  });

  it('a unix socket that another process is listening on is not stolen', async () => {
    const dir = tempDir('peer-unix-busy');
    const path = join(dir.path, 'm.sock');
    const other = createServer();
    try {
      await new Promise<void>((resolve) => other.listen(path, resolve));
      await expect(member(1n, { listenUrls: [`unix://${path}`] })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await new Promise<void>((resolve) => other.close(() => resolve()));
      dir.cleanup();
    }
  });

  it('messages to a member that is not a peer are dropped and counted', async () => {
    const a = await member(1n);
    a.t.send(9n, seqMessage(1));
    expect(a.t.droppedUnknownPeer).toBe(1);
    expect(a.t.isActive(9n)).toBe(false);
  });
});

/** A unix socket file nobody listens on: what a killed process leaves behind. */
async function makeDeadSocketFile(path: string): Promise<void> {
  const script = `const s=require('net').createServer().listen(${JSON.stringify(path)},()=>process.kill(process.pid,'SIGKILL'))`;
  spawnSync(process.execPath, ['-e', script]);
}
