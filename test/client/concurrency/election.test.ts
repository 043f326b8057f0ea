import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCairn, startEtcd, type ServerProc } from '../../../bench/lib/procs';
import { Client, ErrElectionNoLeader, ErrElectionNotLeader, newElection, newSession, type LeaderObservation } from '../../../src/client';
import { EtcdctlProc, sleep } from './helpers';

// Election against real cairn and etcd, shared with `etcdctl elect` and `etcdctl elect -l`.

/** Collect observations in the background. */
function collect(it: AsyncIterableIterator<LeaderObservation>): { seen: LeaderObservation[]; until: (pred: (o: LeaderObservation) => boolean, ms?: number) => Promise<void> } {
  const seen: LeaderObservation[] = [];
  void (async () => {
    for await (const o of it) seen.push(o);
  })();
  return {
    seen,
    until: async (pred, ms = 20_000) => {
      const deadline = Date.now() + ms;
      while (!seen.some(pred)) {
        if (Date.now() > deadline) throw new Error(`not observed; saw ${JSON.stringify(seen.map((o) => [o.key, o.value]))}`);
        await sleep(50);
      }
    },
  };
}

for (const kind of ['cairn', 'etcd'] as const) {
  describe(`Election on ${kind}`, () => {
    let server: ServerProc;
    const clients: Client[] = [];
    const client = (): Client => {
      const c = new Client({ endpoints: [server.endpoint] });
      clients.push(c);
      return c;
    };
    beforeAll(async () => {
      server = kind === 'cairn' ? await startCairn() : await startEtcd();
    });
    afterAll(async () => {
      for (const c of clients.splice(0)) c.close();
      await server?.stop();
    });

    it('leader / proclaim / resign errors and key layout', async () => {
      const s = await newSession(client(), { ttl: 10 });
      const e = newElection(s, 'basic');
      await expect(e.leader()).rejects.toBeInstanceOf(ErrElectionNoLeader);
      await expect(e.proclaim('x')).rejects.toBeInstanceOf(ErrElectionNotLeader);
      await e.campaign('one');
      expect(e.key()).toBe(`basic/${s.lease.toString(16)}`);
      expect((await e.leader()).value).toBe('one');
      await e.proclaim('two');
      const l = await e.leader();
      expect([l.key, l.value, l.kv.lease]).toEqual([e.key(), 'two', s.lease]);
      // Campaigning again with the same session reuses the key and re-proclaims.
      const rev = e.revision;
      await e.campaign('three');
      expect(e.revision).toBe(rev);
      expect((await e.leader()).value).toBe('three');
      await e.resign();
      await expect(e.leader()).rejects.toBeInstanceOf(ErrElectionNoLeader);
      await expect(e.proclaim('x')).rejects.toBeInstanceOf(ErrElectionNotLeader);
      await s.close();
    });

    it('TypeScript observes while `etcdctl elect` campaigns, then wins after etcdctl resigns', async () => {
      const obsSession = await newSession(client(), { ttl: 10 });
      const ac = new AbortController();
      const obs = collect(newElection(obsSession, 'ctl-leads').observe({ signal: ac.signal }));
      await sleep(300); // observing an empty election: waits for the first candidate
      expect(obs.seen).toHaveLength(0);

      const ctl = new EtcdctlProc(server.endpoint, ['elect', 'ctl-leads', 'from-etcdctl']);
      try {
        const [key, value] = await ctl.waitLines(2);
        expect(key).toMatch(/^ctl-leads\/[0-9a-f]+$/);
        expect(value).toBe('from-etcdctl');
        await obs.until((o) => o.value === 'from-etcdctl' && o.key === key);

        const s = await newSession(client(), { ttl: 10 });
        const e = newElection(s, 'ctl-leads');
        let won = false;
        const campaign = e.campaign('from-ts').then(() => (won = true));
        await sleep(800);
        expect(won).toBe(false);
        expect((await e.leader()).value).toBe('from-etcdctl');
        await ctl.interrupt(); // etcdctl resigns on SIGINT
        await campaign;
        await obs.until((o) => o.value === 'from-ts');
        await e.proclaim('from-ts-2');
        await obs.until((o) => o.value === 'from-ts-2');
        const values = obs.seen.map((o) => o.value);
        expect(values).toEqual(['from-etcdctl', 'from-ts', 'from-ts-2']);
        await s.close();
      } finally {
        await ctl.interrupt();
        ac.abort();
      }
      await obsSession.close();
    });

    it('`etcdctl elect -l` observes a TypeScript leader and its changes', async () => {
      const s1 = await newSession(client(), { ttl: 10 });
      const s2 = await newSession(client(), { ttl: 10 });
      const e1 = newElection(s1, 'ts-leads');
      const e2 = newElection(s2, 'ts-leads');
      await e1.campaign('alpha');
      const ctl = new EtcdctlProc(server.endpoint, ['elect', '-l', 'ts-leads']);
      try {
        expect(await ctl.waitLines(2)).toEqual([e1.key(), 'alpha']);
        await e1.proclaim('beta');
        expect((await ctl.waitLines(4)).slice(2)).toEqual([e1.key(), 'beta']);
        const second = e2.campaign('gamma');
        await sleep(300);
        await s1.close(); // revoking the leader's lease hands leadership over
        await second;
        expect((await ctl.waitLines(6)).slice(4)).toEqual([e2.key(), 'gamma']);
      } finally {
        await ctl.interrupt();
      }
      await s2.close();
    });

    it('an etcdctl candidate waits behind a TypeScript leader', async () => {
      const s = await newSession(client(), { ttl: 10 });
      const e = newElection(s, 'ts-first');
      await e.campaign('ts');
      const ctl = new EtcdctlProc(server.endpoint, ['elect', 'ts-first', 'ctl']);
      try {
        await sleep(1_000);
        expect(ctl.lines).toHaveLength(0);
        await e.resign();
        expect((await ctl.waitLines(2))[1]).toBe('ctl');
        expect((await e.leader()).value).toBe('ctl');
      } finally {
        await ctl.interrupt();
      }
      await s.close();
    });
  });
}
