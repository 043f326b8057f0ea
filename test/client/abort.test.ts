import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startCairn, type ServerProc } from '../../bench/lib/procs';
import { CanceledError, Client, ConnectFailedError, DeadlineExceededError, UnavailableError } from '../../src/client';

// Deadlines and AbortSignal. A SIGSTOPped server accepts connections (the kernel does)
// but never answers, so a call sent to it stays in flight until cancelled.

describe('deadlines and AbortSignal', () => {
  let srv: ServerProc;
  let c: Client;
  beforeAll(async () => {
    srv = await startCairn();
    c = new Client({ endpoints: [srv.endpoint] });
    await c.put('k', 'v');
  });
  afterAll(async () => {
    if (srv?.running) process.kill(srv.pid, 'SIGCONT');
    c?.close();
    await srv?.stop();
  });

  it('an already aborted signal fails the call at once without sending it', async () => {
    const ac = new AbortController();
    ac.abort(new Error('not needed any more'));
    const err = await c.put('k', 'changed', { signal: ac.signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CanceledError);
    expect((err as CanceledError).code).toBe(1);
    expect((err as Error).cause).toBe(ac.signal.reason);
    expect((await c.get('k')).kvs[0].valueString()).toBe('v');
  });

  it('aborting cancels a call in flight; timeoutMs bounds one; the client works afterwards', async () => {
    process.kill(srv.pid, 'SIGSTOP');
    try {
      const ac = new AbortController();
      const started = Date.now();
      setTimeout(() => ac.abort(), 200);
      const err = await c.get('k', { signal: ac.signal }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CanceledError);
      expect(Date.now() - started).toBeLessThan(2_000);

      const t0 = Date.now();
      const late = await c.get('k', { timeoutMs: 300 }).catch((e: unknown) => e);
      expect(late).toBeInstanceOf(DeadlineExceededError);
      expect((late as DeadlineExceededError).code).toBe(4);
      expect(Date.now() - t0).toBeLessThan(2_000);
    } finally {
      process.kill(srv.pid, 'SIGCONT');
    }
    expect((await c.get('k')).kvs[0].valueString()).toBe('v');
  });

  it('a watch iterator ends when cancelled while waiting for events', async () => {
    const w = c.watch({ key: 'quiet' });
    await w.ready;
    setTimeout(() => void w.cancel(), 100);
    const batches: unknown[] = [];
    for await (const b of w) batches.push(b);
    expect(batches).toEqual([]);
  });

  it('an unreachable endpoint fails with UnavailableError within the deadline, or CanceledError on abort', async () => {
    const dead = new Client({ endpoints: [`http://127.0.0.1:${await freePort()}`], dialTimeoutMs: 200 });
    try {
      const t0 = Date.now();
      const err = await dead.get('k', { timeoutMs: 800 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnavailableError);
      expect(err).toBeInstanceOf(ConnectFailedError);
      expect(Date.now() - t0).toBeLessThan(2_000);
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      expect(await dead.get('k', { signal: ac.signal, timeoutMs: 5_000 }).catch((e: unknown) => e)).toBeInstanceOf(CanceledError);
    } finally {
      dead.close();
    }
  });
});
