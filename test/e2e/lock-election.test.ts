/**
 * etcd's v3lock and v3election gRPC services, called raw (grpc-js with the generated
 * types), on a real etcd and on the server under test at the same time: each scenario
 * returns a record normalised for what legitimately differs (lease IDs, absolute
 * revisions, timing), asserts its invariants on both servers, and the records must match.
 * Then interoperability with etcdctl's `lock` and `elect`, which use clientv3/concurrency
 * over KV+Watch (not these services) with the same key layout.
 *
 *   npm run build && npx vitest run test/e2e/lock-election.test.ts
 *   CAIRN_COMPAT_AGAINST=etcd npx vitest run test/e2e/lock-election.test.ts   # etcd vs etcd
 */
import * as grpc from '@grpc/grpc-js';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import Long from 'long';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ETCDCTL_BIN, startEtcd, type ServerProc } from '../../bench/lib/procs';
import { etcdserverpb, v3electionpb, v3lockpb } from '../../src/gen/proto';
import { startAll, startUnderTest, targetUnderTest } from '../helpers/servers';
import { grpcClient, leaseGrant, range, unary } from '../helpers/watch-client';

const target = targetUnderTest();
const E = v3electionpb;
const L = v3lockpb;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const str = (b: Uint8Array | null | undefined): string => Buffer.from(b ?? []).toString();
const num = (v: Long | number | null | undefined): number => (v === null || v === undefined ? 0 : Number(v));

interface Failure {
  code: number;
  details: string;
}

/** The call's result, or its status as {code, details}. */
async function outcome<T>(p: Promise<T>): Promise<T | Failure> {
  try {
    return await p;
  } catch (e) {
    const s = e as grpc.ServiceError;
    return { code: s.code, details: s.details };
  }
}

function isFailure(v: unknown): v is Failure {
  return typeof v === 'object' && v !== null && 'code' in v && 'details' in v && !('header' in v);
}

async function waitFor(pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** Raw calls to one server's Lock, Election, KV and Lease services. */
class Api {
  readonly c: grpc.Client;
  /** lease ID (hex) -> label, to normalise keys. */
  private readonly labels = new Map<string, string>();
  base = 0;

  constructor(readonly server: ServerProc) {
    this.c = grpcClient(server.endpoint);
  }

  async grant(label: string, ttl = 60): Promise<Long> {
    const r = await leaseGrant(this.c, ttl);
    const id = Long.fromValue(r.ID);
    this.labels.set(BigInt(id.toString()).toString(16), label);
    return id;
  }

  revoke(id: Long | number): Promise<etcdserverpb.LeaseRevokeResponse> {
    return unary(this.c, '/etcdserverpb.Lease/LeaseRevoke', etcdserverpb.LeaseRevokeRequest, etcdserverpb.LeaseRevokeResponse, { ID: id });
  }

  /** Marks the current revision as the scenario's base (revisions are recorded relative to it). */
  async mark(): Promise<void> {
    this.base = num((await range(this.c, 'zz-mark')).header?.revision);
  }

  /** A key with its lease hex replaced by the lease's label. */
  norm(key: Uint8Array | string | null | undefined): string {
    const k = typeof key === 'string' ? key : str(key);
    return k.replace(/[0-9a-f]+$/, (hex) => `<${this.labels.get(hex) ?? '?'}>`);
  }

  rel(revision: Long | number | null | undefined): string {
    return `+${num(revision) - this.base}`;
  }

  lock(name: string, lease: Long | number, deadlineMs = 30_000): Promise<v3lockpb.LockResponse> {
    return unary(this.c, '/v3lockpb.Lock/Lock', L.LockRequest, L.LockResponse, { name: Buffer.from(name), lease }, deadlineMs);
  }

  unlock(key: Uint8Array | string): Promise<v3lockpb.UnlockResponse> {
    return unary(this.c, '/v3lockpb.Lock/Unlock', L.UnlockRequest, L.UnlockResponse, { key: Buffer.from(key) });
  }

  campaign(name: string, lease: Long | number, value: string, deadlineMs = 30_000): Promise<v3electionpb.CampaignResponse> {
    return unary(
      this.c,
      '/v3electionpb.Election/Campaign',
      E.CampaignRequest,
      E.CampaignResponse,
      { name: Buffer.from(name), lease, value: Buffer.from(value) },
      deadlineMs,
    );
  }

  proclaim(leader: v3electionpb.ILeaderKey | undefined, value: string): Promise<v3electionpb.ProclaimResponse> {
    return unary(this.c, '/v3electionpb.Election/Proclaim', E.ProclaimRequest, E.ProclaimResponse, { leader, value: Buffer.from(value) });
  }

  leader(name: string): Promise<v3electionpb.LeaderResponse> {
    return unary(this.c, '/v3electionpb.Election/Leader', E.LeaderRequest, E.LeaderResponse, { name: Buffer.from(name) });
  }

  resign(leader: v3electionpb.ILeaderKey | undefined): Promise<v3electionpb.ResignResponse> {
    return unary(this.c, '/v3electionpb.Election/Resign', E.ResignRequest, E.ResignResponse, { leader });
  }

  observe(name: string): { responses: v3electionpb.LeaderResponse[]; status: () => grpc.StatusObject | undefined; cancel: () => void } {
    const responses: v3electionpb.LeaderResponse[] = [];
    let status: grpc.StatusObject | undefined;
    const call = this.c.makeServerStreamRequest(
      '/v3electionpb.Election/Observe',
      (m: v3electionpb.ILeaderRequest) => Buffer.from(E.LeaderRequest.encode(m).finish()),
      (b: Buffer) => E.LeaderResponse.decode(b),
      { name: Buffer.from(name) },
    );
    call.on('data', (r: v3electionpb.LeaderResponse) => responses.push(r));
    call.on('status', (s: grpc.StatusObject) => (status = s));
    call.on('error', () => undefined);
    return { responses, status: () => status, cancel: () => call.cancel() };
  }

  async keys(prefix: string): Promise<string[]> {
    const r = await range(this.c, prefix, prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1));
    return r.kvs.map((kv) => this.norm(kv.key));
  }

  /** A failure as recorded; a success as its normalised key or 'ok'. */
  result(v: unknown): string {
    if (isFailure(v)) return `error code=${v.code} ${v.details}`;
    const r = v as { key?: Uint8Array; leader?: v3electionpb.ILeaderKey };
    if (r.key && r.key.length > 0) return `ok ${this.norm(r.key)}`;
    if (r.leader) return `ok ${this.norm(r.leader.key)}`;
    return 'ok';
  }

  close(): void {
    this.c.close();
  }
}

/** `etcdctl <args>` left running: its stdout as it arrives, killed by the test. */
class Etcdctl {
  readonly child: ChildProcessWithoutNullStreams;
  out = '';
  err = '';
  exited = false;

  constructor(endpoint: string, args: string[]) {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCDCTL_')) env[k] = v;
    env.ETCDCTL_API = '3';
    this.child = spawn(ETCDCTL_BIN, ['--endpoints', endpoint, ...args], { env });
    this.child.stdout.on('data', (b: Buffer) => (this.out += b.toString()));
    this.child.stderr.on('data', (b: Buffer) => (this.err += b.toString()));
    this.child.on('exit', () => (this.exited = true));
    this.child.stdin.end();
  }

  lines(): string[] {
    return this.out.split('\n').filter((l) => l.length > 0);
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill(signal);
    await Promise.race([gone, sleep(10_000)]);
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

describe(`v3lock / v3election over raw gRPC: etcd vs ${target}`, () => {
  let servers: ServerProc[] = [];
  const apis: Api[] = [];
  const children: Etcdctl[] = [];

  const etcdctl = (s: ServerProc, args: string[]): Etcdctl => {
    const c = new Etcdctl(s.endpoint, args);
    children.push(c);
    return c;
  };

  /** Runs `scenario` on both servers at once; both must pass it, and their records must match. */
  async function both<T>(scenario: (api: Api) => Promise<T>): Promise<T> {
    const ref = new Api(servers[0]);
    const sut = new Api(servers[1]);
    apis.push(ref, sut);
    const [e, a] = await Promise.allSettled([scenario(ref), scenario(sut)]);
    if (e.status === 'rejected') throw new Error(`reference etcd failed the scenario (harness problem): ${String(e.reason?.stack ?? e.reason)}`);
    if (a.status === 'rejected') {
      const err = a.reason instanceof Error ? a.reason : new Error(String(a.reason));
      err.message = `${target}: ${err.message}\n${target} running: ${String(servers[1].running)}; last output:\n${servers[1].output().slice(-2000)}`;
      throw err;
    }
    expect(a.value, `${target} vs etcd`).toEqual(e.value);
    return e.value;
  }

  beforeAll(async () => {
    servers = await startAll([() => startEtcd({ name: 'lock-ref' }), () => startUnderTest({ name: 'lock-sut' })]);
  }, 60_000);

  afterAll(async () => {
    for (const c of children) await c.kill('SIGKILL');
    for (const a of apis) a.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('three contenders for one lock: FIFO by create revision, never two holders at once', async () => {
    await both(async (api) => {
      const [a, b, c] = [await api.grant('A'), await api.grant('B'), await api.grant('C')];
      const log: string[] = [];
      const held: Array<{ who: string; from: number; to: number }> = [];
      const la = await api.lock('mutex', a);
      const aFrom = performance.now();
      log.push('A acquired');
      const pending = (who: string, lease: Long) =>
        api.lock('mutex', lease).then((r) => {
          log.push(`${who} acquired`);
          return { r, at: performance.now() };
        });
      const pb = pending('B', b);
      await waitFor(async () => (await api.keys('mutex/')).length === 2, 5000, 'B queued');
      const pc = pending('C', c);
      await waitFor(async () => (await api.keys('mutex/')).length === 3, 5000, 'C queued');
      await sleep(500);
      log.push(`after 500 ms: ${log.length} holder(s)`);
      const queue = await api.keys('mutex/');
      const aTo = performance.now();
      log.push('A releasing');
      await api.unlock(la.key);
      const lb = await pb;
      await sleep(300);
      log.push(`C still waiting: ${log.every((l) => !l.startsWith('C'))}`);
      const bTo = performance.now();
      log.push('B releasing');
      await api.unlock(lb.r.key);
      const lc = await pc;
      const cTo = performance.now();
      await api.unlock(lc.r.key);
      held.push({ who: 'A', from: aFrom, to: aTo }, { who: 'B', from: lb.at, to: bTo }, { who: 'C', from: lc.at, to: cTo });
      // Mutual exclusion: each holder acquired only after the previous one released.
      for (let i = 1; i < held.length; i++) expect(held[i].from, `${held[i].who} after ${held[i - 1].who}`).toBeGreaterThanOrEqual(held[i - 1].to);
      expect(log).toEqual(['A acquired', 'after 500 ms: 1 holder(s)', 'A releasing', 'B acquired', 'C still waiting: true', 'B releasing', 'C acquired']);
      return {
        log,
        queue,
        keys: [la.key, lb.r.key, lc.r.key].map((k) => api.norm(k)),
        left: await api.keys('mutex/'),
      };
    });
  });

  it('Lock twice with the same lease returns the same key at once; Unlock of a missing key succeeds', async () => {
    await both(async (api) => {
      const a = await api.grant('A');
      const first = await api.lock('same', a);
      const second = await api.lock('same', a, 3000);
      const unlocked = await api.unlock(first.key);
      const again = await outcome(api.unlock(first.key));
      return [api.result(first), api.result(second), num(second.header?.revision) === num(first.header?.revision), api.result(unlocked), api.result(again)];
    });
  });

  it('a lock is released when its lease is revoked', async () => {
    await both(async (api) => {
      const [a, b] = [await api.grant('A'), await api.grant('B')];
      const la = await api.lock('revoked', a);
      let bDone = false;
      const pb = api.lock('revoked', b).then((r) => ((bDone = true), r));
      await waitFor(async () => (await api.keys('revoked/')).length === 2, 5000, 'B queued');
      await sleep(300);
      const waitedWhileHeld = !bDone;
      const revokedAt = performance.now();
      await api.revoke(a);
      const lb = await pb;
      expect(performance.now()).toBeGreaterThanOrEqual(revokedAt);
      const left = await api.keys('revoked/');
      await api.unlock(lb.key);
      return { a: api.norm(la.key), b: api.norm(lb.key), waitedWhileHeld, left };
    });
  });

  it('a waiter whose client gives up (deadline) leaves the queue, for Lock and Campaign', async () => {
    await both(async (api) => {
      const [a, b, c] = [await api.grant('A'), await api.grant('B'), await api.grant('C')];
      await api.lock('giveup', a);
      const lock = await outcome(api.lock('giveup', b, 700));
      await api.campaign('giveup-e', a, 'a');
      const camp = await outcome(api.campaign('giveup-e', c, 'c', 700));
      await sleep(500);
      // Whether the client's deadline (DeadlineExceeded) or the server's context error
      // (Unknown, "context deadline exceeded") reaches the client first is a race, on etcd too.
      const deadline = (code: number): number | string => (code === 2 || code === 4 ? 'deadline' : code);
      return {
        lock: isFailure(lock) ? deadline(lock.code) : 'ok',
        campaign: isFailure(camp) ? deadline(camp.code) : 'ok',
        lockKeys: await api.keys('giveup/'),
        electionKeys: await api.keys('giveup-e/'),
      };
    });
  });

  it('a waiter whose lease expires while it waits: etcd 3.4 says it holds the lock, cairn fails it', async () => {
    await both(async (api) => {
      const [a, b] = [await api.grant('A'), await api.grant('B', 1)];
      const la = await api.lock('expiry', a);
      const pb = outcome(api.lock('expiry', b));
      await waitFor(async () => (await api.keys('expiry/')).length === 2, 5000, 'B queued');
      await waitFor(async () => (await api.keys('expiry/')).length === 1, 15_000, "B's lease to expire");
      await api.unlock(la.key);
      const r = await pb;
      // etcd 3.4's Mutex.Lock returns the key it no longer has; etcd 3.5 (and cairn) fail it.
      if (api.server.kind === 'etcd') expect(api.result(r)).toBe('ok expiry/<B>');
      else expect(api.result(r)).toBe('error code=2 mutex: session is expired');
      return { left: await api.keys('expiry/') };
    });
  });

  it('campaign, leader, proclaim, observe, resign: the whole flow', async () => {
    await both(async (api) => {
      const [a, b] = [await api.grant('A'), await api.grant('B')];
      await api.mark();
      const rec: unknown[] = [];
      const obs = api.observe('elect');
      rec.push(['leader before any candidate', api.result(await outcome(api.leader('elect')))]);
      const ca = await api.campaign('elect', a, 'a1');
      rec.push(['A campaign', api.result(ca), api.rel(ca.leader?.rev), api.rel(ca.header?.revision), api.norm(ca.leader?.name)]);
      expect(num(ca.leader?.lease)).toBe(num(a));
      let bDone = false;
      const pb = api.campaign('elect', b, 'b1').then((r) => ((bDone = true), r));
      await waitFor(async () => (await api.keys('elect/')).length === 2, 5000, 'B candidate');
      const l1 = await api.leader('elect');
      rec.push(['leader', api.norm(l1.kv?.key), str(l1.kv?.value), api.rel(l1.kv?.createRevision), api.rel(l1.header?.revision)]);
      rec.push(['A proclaims', api.result(await api.proclaim(ca.leader!, 'a2'))]);
      // Campaigning again with the same lease keeps the place and proclaims the new value.
      const again = await api.campaign('elect', a, 'a3');
      rec.push(['A campaigns again', api.result(again), num(again.leader?.rev) === num(ca.leader?.rev)]);
      const l2 = await api.leader('elect');
      rec.push(['leader', api.norm(l2.kv?.key), str(l2.kv?.value), num(l2.kv?.version)]);
      await sleep(300);
      rec.push(['B still waiting', !bDone]);
      rec.push(['A resigns', api.result(await api.resign(ca.leader!))]);
      const cb = await pb;
      rec.push(['B elected', api.result(cb), api.rel(cb.leader?.rev)]);
      const l3 = await api.leader('elect');
      rec.push(['leader', api.norm(l3.kv?.key), str(l3.kv?.value)]);
      rec.push(['A proclaims after resigning', api.result(await outcome(api.proclaim(ca.leader!, 'a4')))]);
      rec.push(['A resigns again', api.result(await outcome(api.resign(ca.leader!)))]);
      rec.push(['B proclaims', api.result(await api.proclaim(cb.leader!, 'b2'))]);
      rec.push(['B resigns', api.result(await api.resign(cb.leader!))]);
      rec.push(['leader after all resigned', api.result(await outcome(api.leader('elect')))]);
      const cc = await api.campaign('elect', a, 'a5');
      await waitFor(() => obs.responses.length >= 6, 5000, `6 observed, got ${obs.responses.length}`);
      await sleep(300);
      obs.cancel();
      // A header's revision is at least its kv's, never goes back; how far ahead it is depends on
      // when a catching-up watcher is served (etcd's sync loop runs every 100 ms), so it is not recorded.
      let last = 0;
      for (const r of obs.responses) {
        expect(num(r.header?.revision)).toBeGreaterThanOrEqual(Math.max(last, num(r.kv?.modRevision)));
        last = num(r.header?.revision);
      }
      rec.push(['observed', obs.responses.map((r) => `${api.norm(r.kv?.key)}=${str(r.kv?.value)} create=${api.rel(r.kv?.createRevision)} mod=${api.rel(r.kv?.modRevision)}`)]);
      await api.resign(cc.leader!);
      return rec;
    });
  });

  it('Observe of an election with a leader starts with it, and follows a successor', async () => {
    await both(async (api) => {
      const [a, b] = [await api.grant('A'), await api.grant('B')];
      await api.mark();
      const ca = await api.campaign('obs2', a, 'x');
      const pb = api.campaign('obs2', b, 'y');
      await waitFor(async () => (await api.keys('obs2/')).length === 2, 5000, 'B candidate');
      const obs = api.observe('obs2');
      await waitFor(() => obs.responses.length >= 1, 5000, 'the current leader');
      await api.revoke(a); // the leader's lease ends: its key goes, B follows
      const cb = await pb;
      await api.proclaim(cb.leader!, 'z');
      await waitFor(() => obs.responses.length >= 3, 5000, `3 observed, got ${obs.responses.length}`);
      obs.cancel();
      return {
        a: api.norm(ca.leader?.key),
        observed: obs.responses.map((r) => `${api.norm(r.kv?.key)}=${str(r.kv?.value)} create=${api.rel(r.kv?.createRevision)} mod=${api.rel(r.kv?.modRevision)}`),
      };
    });
  });

  it('errors: codes and messages as etcd reports them', async () => {
    await both(async (api) => {
      const a = await api.grant('A');
      const rec: Record<string, string> = {};
      rec.leaderNone = api.result(await outcome(api.leader('nobody')));
      rec.proclaimNoLeaderKey = api.result(await outcome(api.proclaim(undefined, 'v')));
      rec.resignNoLeaderKey = api.result(await outcome(api.resign(undefined)));
      rec.proclaimNeverLeader = api.result(await outcome(api.proclaim({ name: Buffer.from('e'), key: Buffer.from('e/1'), rev: 5, lease: a }, 'v')));
      rec.resignNeverLeader = api.result(await outcome(api.resign({ name: Buffer.from('e'), key: Buffer.from('e/1'), rev: 5, lease: a })));
      rec.lockUnknownLease = api.result(await outcome(api.lock('badlease', 0x1234)));
      rec.campaignUnknownLease = api.result(await outcome(api.campaign('badlease-e', 0x1234, 'v')));
      rec.unlockEmptyKey = api.result(await outcome(api.unlock('')));
      rec.keysLeft = JSON.stringify([...(await api.keys('badlease/')), ...(await api.keys('badlease-e/'))]);
      return rec;
    });
  });

  it('lease 0: the session grants its own 60 s lease, and the key names it', async () => {
    await both(async (api) => {
      const r = await api.lock('nolease', 0);
      const key = str(r.key);
      const hex = key.slice('nolease/'.length);
      const ttl = await unary(api.c, '/etcdserverpb.Lease/LeaseTimeToLive', etcdserverpb.LeaseTimeToLiveRequest, etcdserverpb.LeaseTimeToLiveResponse, {
        ID: Long.fromString(hex, false, 16),
      });
      const kv = (await range(api.c, key)).kvs[0];
      expect(BigInt(String(kv.lease)).toString(16)).toBe(hex);
      await api.revoke(ttl.ID);
      return { granted: num(ttl.grantedTTL), alive: num(ttl.TTL) > 50, left: await api.keys('nolease/') };
    });
  });

  it('etcdctl lock holds the lock: a gRPC Lock waits until etcdctl is interrupted (it unlocks), or killed (its lease expires)', async () => {
    await both(async (api) => {
      const rec: unknown[] = [];
      for (const [signal, args] of [['SIGINT', []], ['SIGKILL', ['--ttl', '3']]] as const) {
        const name = `ctl-${signal}`;
        const ctl = etcdctl(api.server, ['lock', name, ...args]);
        await waitFor(() => ctl.lines().length >= 1, 10_000, `etcdctl lock to print its key (stderr: ${ctl.err})`);
        const ctlKey = ctl.lines()[0];
        expect(ctlKey).toMatch(new RegExp(`^${name}/[0-9a-f]+$`));
        const a = await api.grant('A');
        let acquiredAt = 0;
        const p = api.lock(name, a).then((r) => ((acquiredAt = performance.now()), r));
        await waitFor(async () => (await api.keys(`${name}/`)).length === 2, 5000, 'the gRPC Lock to queue');
        await sleep(500);
        const waited = acquiredAt === 0;
        const killedAt = performance.now();
        await ctl.kill(signal);
        const r = await p;
        expect(acquiredAt).toBeGreaterThanOrEqual(killedAt);
        if (signal === 'SIGKILL') expect(acquiredAt - killedAt, 'waited for the lease to expire').toBeGreaterThan(1000);
        rec.push({ signal, waited, got: api.norm(r.key), left: await api.keys(`${name}/`) });
        await api.unlock(r.key);
      }
      return rec;
    });
  });

  it('a gRPC Lock holds the lock: etcdctl lock waits until it is unlocked', async () => {
    await both(async (api) => {
      const a = await api.grant('A');
      const la = await api.lock('ctl-wait', a);
      const ctl = etcdctl(api.server, ['lock', 'ctl-wait']);
      await waitFor(async () => (await api.keys('ctl-wait/')).length === 2, 10_000, 'etcdctl to queue');
      await sleep(500);
      const waited = ctl.lines().length === 0;
      await api.unlock(la.key);
      await waitFor(() => ctl.lines().length >= 1, 10_000, 'etcdctl to acquire');
      const ctlKey = ctl.lines()[0];
      const keys = await api.keys('ctl-wait/');
      await ctl.kill('SIGINT');
      await waitFor(async () => (await api.keys('ctl-wait/')).length === 0, 5000, 'etcdctl to unlock on SIGINT');
      return { waited, ctlKeyIsTheOther: keys.length === 1 && /^ctl-wait\/[0-9a-f]+$/.test(ctlKey) && ctlKey !== str(la.key) };
    });
  });

  it('etcdctl elect and the Election service take part in the same election', async () => {
    await both(async (api) => {
      const a = await api.grant('A');
      const ca = await api.campaign('ctl-elect', a, 'grpc');
      const listen = etcdctl(api.server, ['elect', '-l', 'ctl-elect']);
      await waitFor(() => listen.lines().length >= 2, 10_000, 'etcdctl elect -l to print the leader');
      const cand = etcdctl(api.server, ['elect', 'ctl-elect', 'ctl']);
      await waitFor(async () => (await api.keys('ctl-elect/')).length === 2, 10_000, 'etcdctl elect to campaign');
      await sleep(300);
      const waited = cand.lines().length === 0;
      await api.resign(ca.leader!);
      await waitFor(() => cand.lines().length >= 2, 10_000, 'etcdctl elect to win');
      const leader = await api.leader('ctl-elect');
      await waitFor(() => listen.lines().length >= 4, 10_000, 'etcdctl elect -l to see the new leader');
      await cand.kill('SIGINT'); // resigns
      await waitFor(async () => (await api.keys('ctl-elect/')).length === 0, 5000, 'etcdctl elect to resign');
      await listen.kill('SIGINT');
      const norm = (l: string): string => l.replace(/\/[0-9a-f]+$/, '/<key>');
      return {
        waited,
        won: cand.lines().map(norm),
        leaderValue: str(leader.kv?.value),
        leaderKeyIsEtcdctls: str(leader.kv?.key) === cand.lines()[0],
        listened: listen.lines().slice(0, 4).map(norm),
      };
    });
  });
});
