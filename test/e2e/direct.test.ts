/**
 * The hot methods (KV, unary Lease calls, Watch, LeaseKeepAlive) are served without
 * grpc-js by the client port's own HTTP/2 (src/api/h2/front.ts, src/api/direct.ts). These
 * are the wire cases that path handles itself,
 * on raw HTTP/2 so each frame is under the test's control: the path is attached at all,
 * response headers and trailers as a gRPC client expects them, deadlines, the receive
 * size limit, a unary call with no or two messages, a compressed request (handed to
 * grpc-js), a call the client resets, and a malformed content type. Where etcd gives a
 * comparable answer, it is asked the same.
 *
 *   npx vitest run test/e2e/direct.test.ts      (needs `npm run build`)
 */
import { gzipSync } from 'node:zlib';
import { connect, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCairn, startEtcd, type ServerProc } from '../../bench/lib/procs';
import { etcdserverpb } from '../../src/gen/proto';
import { startAll } from '../helpers/servers';

const pb = etcdserverpb;
const MAX_REQUEST_BYTES = 10_000;
const GRPC_OVERHEAD_BYTES = 512 * 1024;

let cairn: ServerProc;
let etcd: ServerProc;
const sessions: ClientHttp2Session[] = [];

beforeAll(async () => {
  [cairn, etcd] = await startAll([
    () => startCairn({ extraArgs: ['--max-request-bytes', String(MAX_REQUEST_BYTES)] }),
    () => startEtcd({ extraArgs: ['--max-request-bytes', String(MAX_REQUEST_BYTES)] }),
  ]);
});

afterAll(async () => {
  for (const s of sessions) s.destroy();
  await Promise.all([cairn, etcd].filter(Boolean).map((s) => s.stop()));
});

interface Answer {
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders;
  body: Buffer;
  /** grpc-status from the trailers, or from the headers of a trailers-only answer. */
  code: number;
  message: string;
}

function session(server: ServerProc): ClientHttp2Session {
  const s = connect(server.endpoint);
  s.on('error', () => undefined);
  sessions.push(s);
  return s;
}

function frame(message: Uint8Array, compressed = false): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out[0] = compressed ? 1 : 0;
  out.writeUInt32BE(message.length, 1);
  Buffer.from(message).copy(out, 5);
  return out;
}

/** One gRPC call on raw HTTP/2: `body` is sent as is (ended unless `hold`). */
function call(s: ClientHttp2Session, path: string, body: Buffer | Buffer[], extra: OutgoingHttpHeaders = {}, hold = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = s.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extra });
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      if (!req.closed) req.close(); // a held request is still open on our side
      const status = trailers['grpc-status'] ?? headers['grpc-status'];
      const message = trailers['grpc-message'] ?? headers['grpc-message'] ?? '';
      resolve({ headers, trailers, body: Buffer.concat(chunks), code: status === undefined ? -1 : Number(status), message: decodeURIComponent(String(message)) });
    };
    req.on('response', (h) => {
      headers = h;
      if (h['grpc-status'] !== undefined) finish(); // trailers-only answer
    });
    req.on('trailers', (t) => {
      trailers = t;
      finish();
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('close', finish);
    const parts = Array.isArray(body) ? body : [body];
    for (const p of parts) req.write(p);
    if (!hold) req.end();
  });
}

const put = (key: string, value = 'v'): Buffer => frame(pb.PutRequest.encode({ key: Buffer.from(key), value: Buffer.from(value) }).finish());
const range = (key: string): Buffer => frame(pb.RangeRequest.encode({ key: Buffer.from(key) }).finish());

function decodeRange(a: Answer): etcdserverpb.RangeResponse {
  expect(a.body.readUInt32BE(1)).toBe(a.body.length - 5);
  return pb.RangeResponse.decode(a.body.subarray(5));
}

describe('hot methods without grpc-js', () => {
  it('are served by the direct path (the member says so at start)', () => {
    expect(cairn.output()).toContain("serving the hot methods on cairn's own HTTP/2");
  });

  it('answer with the headers and trailers a gRPC client expects, like etcd', async () => {
    for (const server of [cairn, etcd]) {
      const s = session(server);
      const p = await call(s, '/etcdserverpb.KV/Put', put('direct/a', 'one'));
      expect(p.code, server.kind).toBe(Status.OK);
      expect(p.headers[':status']).toBe(200);
      expect(String(p.headers['content-type'])).toMatch(/^application\/grpc/);
      expect(p.trailers['grpc-status']).toBe('0');
      const r = await call(s, '/etcdserverpb.KV/Range', range('direct/a'));
      const resp = decodeRange(r);
      expect(resp.kvs.map((kv) => Buffer.from(kv.value).toString())).toEqual(['one']);
      expect(Number(resp.header?.revision)).toBeGreaterThan(1);
    }
  });

  it('an etcd error comes back as a trailers-only answer with etcd code and message', async () => {
    for (const server of [cairn, etcd]) {
      const a = await call(session(server), '/etcdserverpb.KV/Range', frame(pb.RangeRequest.encode({}).finish()));
      expect(a.code, server.kind).toBe(Status.INVALID_ARGUMENT);
      expect(a.message).toBe('etcdserver: key is not provided');
      expect(a.body.length).toBe(0);
    }
  });

  it('a message over the receive limit gets RESOURCE_EXHAUSTED before it is read whole, like etcd', async () => {
    const len = MAX_REQUEST_BYTES + GRPC_OVERHEAD_BYTES + 1;
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(len, 1);
    for (const server of [cairn, etcd]) {
      // Only the prefix and a little of the body are sent: the answer must not wait for the rest.
      const a = await call(session(server), '/etcdserverpb.KV/Put', [prefix, Buffer.alloc(1000)], {}, true);
      expect(a.code, server.kind).toBe(Status.RESOURCE_EXHAUSTED);
    }
    const c = await call(session(cairn), '/etcdserverpb.KV/Put', [prefix, Buffer.alloc(1000)], {}, true);
    expect(c.message).toBe(`Received message larger than max (${len} vs ${MAX_REQUEST_BYTES + GRPC_OVERHEAD_BYTES})`);
  });

  it('a request body split over many DATA frames is put together', async () => {
    const value = 'x'.repeat(9000);
    const whole = put('direct/split', value);
    const parts: Buffer[] = [];
    for (let i = 0; i < whole.length; i += 7) parts.push(whole.subarray(i, i + 7));
    const s = session(cairn);
    expect((await call(s, '/etcdserverpb.KV/Put', parts)).code).toBe(Status.OK);
    const resp = decodeRange(await call(s, '/etcdserverpb.KV/Range', range('direct/split')));
    expect(Buffer.from(resp.kvs[0].value).toString()).toBe(value);
  });

  it('a unary call with no message, or two, is refused and writes nothing', async () => {
    const s = session(cairn);
    const none = await call(s, '/etcdserverpb.KV/Put', Buffer.alloc(0));
    expect(none.code).toBe(Status.UNIMPLEMENTED);
    expect(none.message).toBe('Received no request message for unary RPC /etcdserverpb.KV/Put');
    const truncated = await call(s, '/etcdserverpb.KV/Put', put('direct/truncated').subarray(0, 8));
    expect(truncated.code).toBe(Status.UNIMPLEMENTED);
    const two = await call(s, '/etcdserverpb.KV/Put', Buffer.concat([put('direct/two-a'), put('direct/two-b')]));
    expect(two.code).toBe(Status.UNIMPLEMENTED);
    expect(two.message).toBe('Received a second request message for server unary RPC /etcdserverpb.KV/Put');
    for (const k of ['direct/truncated', 'direct/two-a', 'direct/two-b']) {
      expect(decodeRange(await call(s, '/etcdserverpb.KV/Range', range(k))).kvs.length, k).toBe(0);
    }
    // etcd (grpc-go) refuses no message too (Unknown "EOF"), but takes the first of two
    // messages and drops the second; cairn keeps grpc-js's stricter answer, which it gave
    // before this path existed.
    const etcdNone = await call(session(etcd), '/etcdserverpb.KV/Put', Buffer.alloc(0));
    expect(etcdNone.code).toBe(Status.UNKNOWN);
  });

  it('a garbage message gets INTERNAL "Error deserializing request"; a compressed flag without an encoding is refused', async () => {
    const s = session(cairn);
    const garbage = await call(s, '/etcdserverpb.KV/Put', frame(Buffer.from([0x0a, 0x40, 0x61])));
    expect(garbage.code).toBe(Status.INTERNAL);
    expect(garbage.message).toBe('Error deserializing request');
    const lie = await call(s, '/etcdserverpb.KV/Put', frame(pb.PutRequest.encode({ key: Buffer.from('direct/lie') }).finish(), true));
    expect(lie.code).not.toBe(Status.OK);
    expect(decodeRange(await call(s, '/etcdserverpb.KV/Range', range('direct/lie'))).kvs.length).toBe(0);
  });

  it('a gzip-compressed request is served (by grpc-js), like etcd', async () => {
    const message = pb.PutRequest.encode({ key: Buffer.from('direct/gz'), value: Buffer.from('zipped') }).finish();
    const s = session(cairn);
    const a = await call(s, '/etcdserverpb.KV/Put', frame(gzipSync(message), true), { 'grpc-encoding': 'gzip' });
    expect(a.code, a.message).toBe(Status.OK);
    const resp = decodeRange(await call(s, '/etcdserverpb.KV/Range', range('direct/gz')));
    expect(Buffer.from(resp.kvs[0].value).toString()).toBe('zipped');
  });

  it('grpc-timeout: a call whose request never completes gets DEADLINE_EXCEEDED; a bad value is refused', async () => {
    const s = session(cairn);
    const started = Date.now();
    const late = await call(s, '/etcdserverpb.KV/Range', range('direct/a').subarray(0, 3), { 'grpc-timeout': '200m' }, true);
    expect(late.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(late.message).toBe('Deadline exceeded');
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    const bad = await call(s, '/etcdserverpb.KV/Range', range('direct/a'), { 'grpc-timeout': 'soon' });
    expect(bad.code).toBe(Status.INTERNAL);
    expect(bad.message).toBe('Invalid grpc-timeout value "soon"');
    // A generous deadline does not get in the way.
    const fine = await call(s, '/etcdserverpb.KV/Range', range('direct/a'), { 'grpc-timeout': '5S' });
    expect(fine.code).toBe(Status.OK);
  });

  it('a call the client resets mid-request, and a wrong content type, leave the member serving', async () => {
    const s = session(cairn);
    for (let i = 0; i < 50; i++) {
      const req = s.request({ ':method': 'POST', ':path': '/etcdserverpb.KV/Put', 'content-type': 'application/grpc', te: 'trailers' });
      req.on('error', () => undefined);
      req.write(put(`direct/reset/${i}`).subarray(0, 6));
      req.close(); // RST_STREAM before the request is complete
    }
    const wrong = await new Promise<number>((resolve) => {
      const req = s.request({ ':method': 'POST', ':path': '/etcdserverpb.KV/Put', 'content-type': 'text/plain' });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.end(put('direct/text'));
    });
    expect(wrong).toBe(415); // grpc-js's answer to a non-gRPC content type
    const lease = await call(s, '/etcdserverpb.Lease/LeaseGrant', frame(pb.LeaseGrantRequest.encode({ TTL: 30 }).finish()));
    expect(lease.code).toBe(Status.OK);
    expect(Number(pb.LeaseGrantResponse.decode(lease.body.subarray(5)).TTL)).toBe(30);
    expect(cairn.running).toBe(true);
  });

  it('Watch: requests split over DATA frames or sharing one, events out, OK trailers after the client half-closes', async () => {
    const s = session(cairn);
    const req = s.request({ ':method': 'POST', ':path': '/etcdserverpb.Watch/Watch', 'content-type': 'application/grpc', te: 'trailers' });
    const responses: etcdserverpb.WatchResponse[] = [];
    let pending = Buffer.alloc(0);
    let trailers: IncomingHttpHeaders = {};
    req.on('data', (c: Buffer) => {
      pending = Buffer.concat([pending, c]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const len = pending.readUInt32BE(1);
        responses.push(pb.WatchResponse.decode(pending.subarray(5, 5 + len)));
        pending = pending.subarray(5 + len);
      }
    });
    req.on('trailers', (t) => (trailers = t));
    const closed = new Promise<void>((resolve) => req.on('close', resolve));
    const create = (key: string, watchId: number): Buffer => frame(pb.WatchRequest.encode({ createRequest: { key: Buffer.from(key), watchId } }).finish());
    // Two creates in one write, sent 3 bytes at a time.
    const both = Buffer.concat([create('direct/w1', 1), create('direct/w2', 2)]);
    for (let i = 0; i < both.length; i += 3) req.write(both.subarray(i, i + 3));
    const until = async (cond: () => boolean): Promise<void> => {
      for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(cond()).toBe(true);
    };
    await until(() => responses.filter((r) => r.created).length === 2);
    expect(responses.filter((r) => r.created).map((r) => Number(r.watchId)).sort()).toEqual([1, 2]);
    const u = session(cairn);
    expect((await call(u, '/etcdserverpb.KV/Put', put('direct/w1', 'x'))).code).toBe(Status.OK);
    expect((await call(u, '/etcdserverpb.KV/Put', put('direct/w2', 'y'))).code).toBe(Status.OK);
    await until(() => responses.filter((r) => r.events.length > 0).length === 2);
    const got = responses.filter((r) => r.events.length > 0).map((r) => [Number(r.watchId), Buffer.from(r.events[0].kv!.value).toString()]);
    expect(got).toEqual([
      [1, 'x'],
      [2, 'y'],
    ]);
    req.end(); // half-close: the server ends the stream with OK
    await closed;
    expect(trailers['grpc-status']).toBe('0');
  });

  it('Watch: an undecodable request ends the stream with INTERNAL; a reset stream leaves the member serving', async () => {
    const s = session(cairn);
    const bad = await call(s, '/etcdserverpb.Watch/Watch', frame(Buffer.from([0x0a, 0x40, 0x61])), {}, true);
    expect(bad.code).toBe(Status.INTERNAL);
    expect(bad.message).toBe('Error deserializing request');
    for (let i = 0; i < 20; i++) {
      const req = s.request({ ':method': 'POST', ':path': '/etcdserverpb.Watch/Watch', 'content-type': 'application/grpc', te: 'trailers' });
      req.on('error', () => undefined);
      req.write(frame(pb.WatchRequest.encode({ createRequest: { key: Buffer.from(`direct/reset/${i}`) } }).finish()));
      req.close();
    }
    expect((await call(s, '/etcdserverpb.KV/Put', put('direct/after-resets'))).code).toBe(Status.OK);
    expect(cairn.running).toBe(true);
  });

  it('a stopping member ends its watch and keep-alive streams at once with Unavailable (etcd exits at once too)', async () => {
    const own = await startCairn();
    try {
      const s = connect(own.endpoint);
      s.on('error', () => undefined);
      const open = (path: string, first: Buffer): Promise<Answer> => call(s, path, first, {}, true);
      const lease = await call(s, '/etcdserverpb.Lease/LeaseGrant', frame(pb.LeaseGrantRequest.encode({ TTL: 60 }).finish()));
      const id = pb.LeaseGrantResponse.decode(lease.body.subarray(5)).ID;
      const watch = open('/etcdserverpb.Watch/Watch', frame(pb.WatchRequest.encode({ createRequest: { key: Buffer.from('stop/w') } }).finish()));
      const keepAlive = open('/etcdserverpb.Lease/LeaseKeepAlive', frame(pb.LeaseKeepAliveRequest.encode({ ID: id }).finish()));
      await new Promise((r) => setTimeout(r, 300)); // both streams answered their first request
      const started = Date.now();
      await own.stop(); // SIGTERM, then waits for the exit
      const took = Date.now() - started;
      const [w, k] = await Promise.all([watch, keepAlive]);
      for (const a of [w, k]) {
        expect(a.code).toBe(Status.UNAVAILABLE);
        expect(a.message).toBe('etcdserver: server stopped');
        expect(a.body.length).toBeGreaterThan(0); // the stream had answered before it was ended
      }
      expect(took, 'a member with open streams waited out its shutdown grace').toBeLessThan(3000);
      s.destroy();
    } finally {
      if (own.running) await own.stop();
    }
  });
});

