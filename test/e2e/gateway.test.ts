/**
 * etcd's JSON gateway (/v3/..., /v3beta/...): the same curl-style requests (fetch) against
 * cairn and against a real etcd 3.4, the answers compared after normalising what differs
 * between any two clusters (cluster, member and lease IDs, terms, sizes, URLs, hashes).
 *
 *   npx vitest run test/e2e/gateway.test.ts        (needs `npm run build`)
 *
 * CAIRN_COMPAT_AGAINST=etcd runs it etcd-vs-etcd (checks the normalisation).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type ServerProc } from '../../bench/lib/procs';
import { startAll, startUnderTest } from '../helpers/servers';

let cairn: ServerProc;
let etcd: ServerProc;

beforeAll(async () => {
  [cairn, etcd] = await startAll([() => startUnderTest(), () => startEtcd()]);
});
afterAll(async () => {
  await Promise.all([cairn?.stop(), etcd?.stop()]);
});

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

interface Answer {
  status: number;
  body: unknown;
}

/** POST a body (an object is sent as JSON, a string as is); the answer parsed as JSON when it is. */
async function post(endpoint: string, path: string, body: unknown = {}): Promise<Answer> {
  const res = await fetch(endpoint + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (404 text, streams)
  }
  return { status: res.status, body: parsed };
}

/** A streamed answer: its newline-delimited JSON objects, read as they arrive. */
async function openStream(endpoint: string, path: string, body: unknown, signal: AbortSignal) {
  const res = await fetch(endpoint + path, { method: 'POST', body: JSON.stringify(body), signal });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  return {
    status: res.status,
    async next(timeoutMs = 5000): Promise<unknown> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const nl = buf.indexOf('\n');
        if (nl >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim() !== '') return JSON.parse(line);
          continue;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no streamed message within ${timeoutMs} ms (have ${JSON.stringify(buf)})`);
        const chunk = await Promise.race([
          reader.read(),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no streamed message within ${timeoutMs} ms`)), left)),
        ]);
        if (chunk.done) throw new Error(`stream ended (have ${JSON.stringify(buf)})`);
        buf += decoder.decode(chunk.value, { stream: true });
      }
    },
  };
}

// What legitimately differs between two clusters.
const ID_FIELDS = new Set(['cluster_id', 'member_id', 'leader', 'raft_term', 'raftTerm', 'ID']);
const SIZE_FIELDS = new Set(['version', 'dbSize', 'dbSizeInUse', 'raftIndex', 'raftAppliedIndex']);

/** `kind` applies to a whole answer: 'status' (sizes, indexes, version) or 'ttl' (remaining TTLs). */
function normalise(v: unknown, kind = ''): unknown {
  if (Array.isArray(v)) return v.map((x) => normalise(x, kind));
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (ID_FIELDS.has(k) && typeof x === 'string') out[k] = /^\d+$/.test(x) ? '<id>' : x;
    else if (kind === 'status' && SIZE_FIELDS.has(k)) out[k] = '<n>';
    else if (k === 'hash') out[k] = typeof x;
    else if (k === 'peerURLs' || k === 'clientURLs') out[k] = (x as string[]).map(() => '<url>');
    // A lease's remaining TTL may tick between the grant and the read.
    else if (kind === 'ttl' && k === 'TTL' && typeof x === 'string' && Number(x) >= 50 && Number(x) <= 60) out[k] = '<ttl>';
    else out[k] = normalise(x, kind);
  }
  return out;
}

type Step = { name: string; kind?: 'status' | 'ttl'; run: (endpoint: string, state: Record<string, string>) => Promise<unknown> };

/** The request sequence; every step's answer is recorded (status and body). */
const steps: Step[] = [
  { name: 'put foo', run: (e) => post(e, '/v3/kv/put', { key: b64('foo'), value: b64('bar') }) },
  { name: 'put foo with prev_kv', run: (e) => post(e, '/v3/kv/put', { key: b64('foo'), value: b64('bar2'), prev_kv: true }) },
  { name: 'put foo2', run: (e) => post(e, '/v3/kv/put', { key: b64('foo2'), value: b64('v2') }) },
  { name: 'put foo3', run: (e) => post(e, '/v3/kv/put', { key: b64('foo3'), value: b64('v3') }) },
  { name: 'range foo', run: (e) => post(e, '/v3/kv/range', { key: b64('foo') }) },
  { name: 'range missing key', run: (e) => post(e, '/v3/kv/range', { key: b64('nope') }) },
  {
    name: 'range with range_end and limit',
    run: (e) => post(e, '/v3/kv/range', { key: b64('foo'), range_end: b64('foo4'), limit: 2 }),
  },
  {
    name: 'range, lowerCamelCase names, keys only, descending',
    run: (e) => post(e, '/v3/kv/range', { key: b64('foo'), rangeEnd: b64('fop'), keysOnly: true, sort_order: 'DESCEND', sort_target: 'KEY' }),
  },
  { name: 'range count_only', run: (e) => post(e, '/v3/kv/range', { key: b64('\0'), range_end: b64('\0'), count_only: true }) },
  { name: 'deleterange with prev_kv', run: (e) => post(e, '/v3/kv/deleterange', { key: b64('foo3'), prev_kv: true }) },
  {
    name: 'txn, compare succeeds',
    run: (e) =>
      post(e, '/v3/kv/txn', {
        compare: [{ key: b64('foo'), result: 'EQUAL', target: 'VALUE', value: b64('bar2') }],
        success: [{ request_put: { key: b64('foo'), value: b64('baz') } }, { request_range: { key: b64('foo2') } }],
        failure: [{ request_range: { key: b64('foo') } }],
      }),
  },
  {
    name: 'txn, compare fails',
    run: (e) =>
      post(e, '/v3/kv/txn', {
        compare: [{ key: b64('foo'), result: 'EQUAL', target: 'CREATE', create_revision: '0' }],
        success: [{ request_put: { key: b64('foo'), value: b64('never') } }],
        failure: [{ request_range: { key: b64('foo') } }, { request_delete_range: { key: b64('nothing'), prev_kv: true } }],
      }),
  },
  { name: 'compaction', run: (e) => post(e, '/v3/kv/compaction', { revision: '3' }) },
  { name: 'compaction again: compacted', run: (e) => post(e, '/v3/kv/compaction', { revision: 3 }) },
  { name: 'compaction in the future', run: (e) => post(e, '/v3/kv/compaction', { revision: '300' }) },
  {
    name: 'lease grant',
    run: async (e, s) => {
      const a = await post(e, '/v3/lease/grant', { TTL: 60 });
      s.lease = (a.body as { ID: string }).ID;
      return a;
    },
  },
  { name: 'put with the lease', run: (e, s) => post(e, '/v3/kv/put', { key: b64('leased'), value: b64('x'), lease: s.lease }) },
  { name: 'lease timetolive with keys', kind: 'ttl', run: (e, s) => post(e, '/v3/lease/timetolive', { ID: s.lease, keys: true }) },
  { name: 'kv/lease/timetolive alias', kind: 'ttl', run: (e, s) => post(e, '/v3/kv/lease/timetolive', { ID: s.lease }) },
  { name: 'lease leases', run: (e) => post(e, '/v3/lease/leases', {}) },
  { name: 'kv/lease/leases alias', run: (e) => post(e, '/v3/kv/lease/leases', {}) },
  {
    name: 'lease keepalive (one request, one streamed result)',
    kind: 'ttl',
    run: async (e, s) => {
      const res = await fetch(`${e}/v3/lease/keepalive`, { method: 'POST', body: JSON.stringify({ ID: s.lease }) });
      const lines = (await res.text()).split('\n').filter((l) => l.trim() !== '');
      return { status: res.status, body: lines.map((l) => JSON.parse(l) as unknown) };
    },
  },
  { name: 'lease revoke', run: (e, s) => post(e, '/v3/lease/revoke', { ID: s.lease }) },
  { name: 'kv/lease/revoke of a revoked lease', run: (e, s) => post(e, '/v3/kv/lease/revoke', { ID: s.lease }) },
  { name: 'lease timetolive after revoke', run: (e, s) => post(e, '/v3/lease/timetolive', { ID: s.lease }) },
  { name: 'leased key is gone', run: (e) => post(e, '/v3/kv/range', { key: b64('leased') }) },
  { name: 'put with an unknown lease', run: (e) => post(e, '/v3/kv/put', { key: b64('foo'), lease: '999' }) },
  { name: 'lease grant with an ID, twice', run: async (e) => [await post(e, '/v3/lease/grant', { TTL: '30', ID: '1234' }), await post(e, '/v3/lease/grant', { TTL: '30', ID: '1234' })] },
  { name: 'status', kind: 'status', run: (e) => post(e, '/v3/maintenance/status', {}) },
  { name: 'alarm list', run: (e) => post(e, '/v3/maintenance/alarm', { action: 'GET' }) },
  { name: 'hash', run: (e) => post(e, '/v3/maintenance/hash', {}) },
  { name: 'defragment', run: (e) => post(e, '/v3/maintenance/defragment', {}) },
  { name: 'member list', run: (e) => post(e, '/v3/cluster/member/list', {}) },
  { name: 'error: empty key', run: (e) => post(e, '/v3/kv/put', { key: '', value: b64('v') }) },
  { name: 'error: range without a key', run: (e) => post(e, '/v3/kv/range', '') },
  { name: 'error: truncated JSON', run: (e) => post(e, '/v3/kv/put', '{"key":') },
  { name: 'error: not JSON', run: (e) => post(e, '/v3/kv/range', 'hello') },
  { name: 'error: bad base64', run: (e) => post(e, '/v3/kv/range', { key: 'Zm9vYQ' }) },
  { name: 'error: wrong type', run: (e) => post(e, '/v3/kv/range', { key: b64('foo'), serializable: 'true' }) },
  { name: 'error: unknown enum name', run: (e) => post(e, '/v3/kv/txn', { compare: [{ key: b64('foo'), result: 'BOGUS' }] }) },
  { name: 'error: fractional int64', run: (e) => post(e, '/v3/kv/range', { key: b64('foo'), limit: 1.5 }) },
  { name: 'unknown fields are ignored', run: (e) => post(e, '/v3/kv/range', { key: b64('foo'), no_such_field: 1 }) },
  { name: 'unknown path', run: (e) => post(e, '/v3/kv/nope', {}) },
  { name: 'GET on a POST path', run: async (e) => (await fetch(`${e}/v3/kv/range`)).status },
  { name: '/v3beta/ alias', run: (e) => post(e, '/v3beta/kv/range', { key: b64('foo') }) },
  { name: 'server still answers after the bad requests', run: (e) => post(e, '/v3/kv/range', { key: b64('foo2') }) },
];

async function runSequence(endpoint: string): Promise<Array<{ step: string; answer: unknown }>> {
  const state: Record<string, string> = {};
  const out: Array<{ step: string; answer: unknown }> = [];
  for (const s of steps) {
    const answer = await s.run(endpoint, state);
    out.push({ step: s.name, answer: normalise(answer, s.kind ?? '') });
  }
  return out;
}

describe('JSON gateway, compared with etcd 3.4', () => {
  it('the request sequence answers as etcd\'s gateway does', async () => {
    const ours = await runSequence(cairn.endpoint);
    const theirs = await runSequence(etcd.endpoint);
    for (let i = 0; i < steps.length; i++) {
      expect(ours[i].answer, steps[i].name).toEqual(theirs[i].answer);
    }
    // A few absolute checks, so that the comparison cannot pass on two equally wrong answers.
    const byName = new Map(ours.map((o) => [o.step, o.answer as Answer]));
    expect(byName.get('range foo')).toEqual({
      status: 200,
      body: {
        header: { cluster_id: '<id>', member_id: '<id>', revision: '5', raft_term: '<id>' },
        kvs: [{ key: b64('foo'), create_revision: '2', mod_revision: '3', version: '2', value: b64('bar2') }],
        count: '1',
      },
    });
    expect(byName.get('error: empty key')).toEqual({
      status: 400,
      body: { error: 'etcdserver: key is not provided', message: 'etcdserver: key is not provided', code: 3 },
    });
    expect((byName.get('status')!.body as Record<string, unknown>).version).toBe('<n>');
    expect(Object.keys(byName.get('status')!.body as object)).toEqual(
      expect.arrayContaining(['header', 'version', 'dbSize', 'leader', 'raftIndex', 'raftTerm', 'raftAppliedIndex', 'dbSizeInUse']),
    );
    expect(byName.get('unknown path')).toEqual({ status: 404, body: 'Not Found\n' });
  });

  it('a watch streams created, then the put event, until the client goes away', async () => {
    const watchOn = async (endpoint: string) => {
      const ac = new AbortController();
      try {
        const start = (await post(endpoint, '/v3/kv/put', { key: b64('w/before'), value: b64('0') })).body as { header: { revision: string } };
        const stream = await openStream(endpoint, '/v3/watch', { create_request: { key: b64('w/'), range_end: b64('w0'), prev_kv: true } }, ac.signal);
        const created = await stream.next();
        const put = await post(endpoint, '/v3/kv/put', { key: b64('w/a'), value: b64('1') });
        const event = await stream.next();
        const del = await post(endpoint, '/v3/kv/deleterange', { key: b64('w/before') });
        const deleted = await stream.next();
        // A second stream replaying history from before the first put (a catching-up watcher
        // gets the past events in one message).
        const history = await openStream(endpoint, '/v3/watch', { create_request: { key: b64('w/before'), start_revision: start.header.revision } }, ac.signal);
        const replay = [await history.next(), await history.next()];
        return { status: stream.status, created, put: put.status, event, del: del.status, deleted, replay };
      } finally {
        ac.abort();
      }
    };
    const ours = normalise(await watchOn(cairn.endpoint));
    const theirs = normalise(await watchOn(etcd.endpoint));
    expect(ours).toEqual(theirs);
    const o = ours as { status: number; created: { result: { created: boolean } }; event: { result: { events: Array<{ kv: { key: string; value: string } }> } } };
    expect(o.status).toBe(200);
    expect(o.created.result.created).toBe(true);
    expect(o.event.result.events[0].kv).toMatchObject({ key: b64('w/a'), value: b64('1') });
    // The server is still fine after the client went away, and dropped its watchers.
    const deadline = Date.now() + 5000;
    for (;;) {
      const text = await (await fetch(`${cairn.endpoint}/metrics`)).text();
      if (/^etcd_debugging_mvcc_watcher_total 0$/m.test(text)) break;
      if (Date.now() > deadline) throw new Error('watchers of aborted gateway watches were not removed');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await post(cairn.endpoint, '/v3/kv/range', { key: b64('w/a') })).status).toBe(200);
    const health = await fetch(`${cairn.endpoint}/health`);
    expect(health.status).toBe(200);
  });

  it('streamed requests: bad first message is a 500, several keep-alives in one body get one answer each', async () => {
    for (const endpoint of [cairn.endpoint, etcd.endpoint]) {
      const bad = await post(endpoint, '/v3/watch', '{"create_request":{"key":"Zm9v"');
      expect(bad, endpoint).toEqual({ status: 500, body: { error: 'unexpected EOF', message: 'unexpected EOF', code: 2 } });
    }
    const keepalives = async (endpoint: string) => {
      const id = ((await post(endpoint, '/v3/lease/grant', { TTL: 30 })).body as { ID: string }).ID;
      const res = await fetch(`${endpoint}/v3/lease/keepalive`, { method: 'POST', body: `{"ID":"${id}"}\n{"ID":"${id}"} {"ID":"77"}` });
      return { status: res.status, lines: (await res.text()).split('\n').filter((l) => l.trim() !== '').map((l) => normalise(JSON.parse(l))) };
    };
    const ours = await keepalives(cairn.endpoint);
    expect(ours).toEqual(await keepalives(etcd.endpoint));
    expect(ours.lines).toHaveLength(3);
  });
});
