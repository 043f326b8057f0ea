/**
 * The client port's own HTTP/2 (src/api/h2/): what the client suites do not reach on their
 * own. Flow control with a response far larger than the client's windows (and a client
 * that stops reading for a while), PING, a request header block split over CONTINUATION
 * frames, a protocol error ending the connection with GOAWAY, GOAWAY when the member stops,
 * and a call relayed to grpc-js (a method the front does not serve itself) next to served
 * ones on the same connection.
 *
 *   npx vitest run test/e2e/h2-front.test.ts      (needs `npm run build`)
 */
import { createHash } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCairn, type ServerProc } from '../../bench/lib/procs';
import { etcdserverpb } from '../../src/gen/proto';
import { encodeHeaders } from '../../src/api/h2/hpack';

const pb = etcdserverpb;
let cairn: ServerProc;
const sessions: ClientHttp2Session[] = [];

beforeAll(async () => {
  cairn = await startCairn();
});

afterAll(async () => {
  for (const s of sessions) s.destroy();
  await cairn?.stop();
});

function session(server: ServerProc, settings: { initialWindowSize?: number } = {}): ClientHttp2Session {
  const s = connect(server.endpoint, { settings });
  s.on('error', () => undefined);
  sessions.push(s);
  return s;
}

function frame(message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  Buffer.from(message).copy(out, 5);
  return out;
}

interface Answer {
  code: number;
  body: Buffer;
  headers: IncomingHttpHeaders;
}

/**
 * One call; with `pauseMs` the client stops reading the response for that long first, and
 * with `slow` it also pauses after each chunk (a reader that keeps its window nearly full).
 */
function call(s: ClientHttp2Session, path: string, body: Buffer, extra: Record<string, string> = {}, pauseMs = 0, slow = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = s.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extra });
    const chunks: Buffer[] = [];
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    req.on('response', (h) => {
      headers = h;
      if (pauseMs > 0) {
        req.pause();
        setTimeout(() => req.resume(), pauseMs);
      }
    });
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      if (slow) {
        req.pause();
        setTimeout(() => req.resume(), 2);
      }
    });
    req.on('trailers', (t) => (trailers = t));
    req.on('error', reject);
    req.on('close', () => {
      const status = trailers['grpc-status'] ?? headers['grpc-status'];
      resolve({ code: status === undefined ? -1 : Number(status), body: Buffer.concat(chunks), headers });
    });
    req.end(body);
  });
}

function put(key: string, value: Buffer | string): Buffer {
  return frame(pb.PutRequest.encode({ key: Buffer.from(key), value: Buffer.from(value) }).finish());
}

describe("the client port's own HTTP/2", () => {
  it('a response far larger than the client windows arrives whole, also when the client stops reading for a while', async () => {
    const s = session(cairn, { initialWindowSize: 65_535 });
    const value = Buffer.alloc(200_000, 0x61);
    for (let i = 0; i < 15; i++) expect((await call(s, '/etcdserverpb.KV/Put', put(`big/${String(i).padStart(2, '0')}`, value))).code).toBe(Status.OK);
    const range = frame(pb.RangeRequest.encode({ key: Buffer.from('big/'), rangeEnd: Buffer.from('big0') }).finish());
    for (const pauseMs of [0, 300]) {
      const a = await call(s, '/etcdserverpb.KV/Range', range, {}, pauseMs);
      expect(a.code).toBe(Status.OK);
      const len = a.body.readUInt32BE(1);
      expect(a.body.length).toBe(5 + len);
      const resp = pb.RangeResponse.decode(a.body.subarray(5));
      expect(resp.kvs.length).toBe(15);
      expect(resp.kvs.every((kv) => kv.value.length === 200_000)).toBe(true);
    }
  });

  it('relays a server stream (Maintenance.Snapshot) whole to a slow reader: the last bytes, then the trailers', async () => {
    const s = session(cairn, { initialWindowSize: 65_535 });
    const value = Buffer.alloc(200_000, 0x62);
    for (let i = 0; i < 10; i++) expect((await call(s, '/etcdserverpb.KV/Put', put(`snap/${i}`, value))).code).toBe(Status.OK);
    const a = await call(s, '/etcdserverpb.Maintenance/Snapshot', frame(pb.SnapshotRequest.encode({}).finish()), {}, 200, true);
    expect(a.code).toBe(Status.OK);
    const parts: Buffer[] = [];
    for (let off = 0; off < a.body.length; ) {
      const len = a.body.readUInt32BE(off + 1);
      parts.push(Buffer.from(pb.SnapshotResponse.decode(a.body.subarray(off + 5, off + 5 + len)).blob));
      off += 5 + len;
    }
    const blob = Buffer.concat(parts);
    expect(blob.length).toBeGreaterThan(2_000_000);
    // etcd's snapshot stream ends with the SHA-256 of what came before it.
    expect(createHash('sha256').update(blob.subarray(0, blob.length - 32)).digest().equals(blob.subarray(blob.length - 32))).toBe(true);
  });

  it('answers PING', async () => {
    const s = session(cairn);
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    const rtt = await new Promise<number>((resolve, reject) => s.ping((err, ms) => (err ? reject(err) : resolve(ms))));
    expect(rtt).toBeGreaterThanOrEqual(0);
  });

  it('reads a request header block split over CONTINUATION frames (40 KB of metadata)', async () => {
    const s = session(cairn);
    const a = await call(s, '/etcdserverpb.KV/Put', put('h2/continuation', 'v'), { 'x-big': 'b'.repeat(40_000) });
    expect(a.code).toBe(Status.OK);
    const r = await call(s, '/etcdserverpb.KV/Range', frame(pb.RangeRequest.encode({ key: Buffer.from('h2/continuation') }).finish()));
    expect(pb.RangeResponse.decode(r.body.subarray(5)).kvs[0].value.toString()).toBe('v');
  });

  it('relays a method it does not serve (MemberList, to grpc-js) on the same connection as served calls', async () => {
    const s = session(cairn);
    const [members, putAnswer] = await Promise.all([
      call(s, '/etcdserverpb.Cluster/MemberList', frame(pb.MemberListRequest.encode({}).finish())),
      call(s, '/etcdserverpb.KV/Put', put('h2/relay', 'x')),
    ]);
    expect(members.code).toBe(Status.OK);
    expect(pb.MemberListResponse.decode(members.body.subarray(5)).members.length).toBe(1);
    expect(putAnswer.code).toBe(Status.OK);
  });

  it('ends the connection with GOAWAY (PROTOCOL_ERROR) on DATA for stream 0, and keeps serving others', async () => {
    const url = new URL(cairn.endpoint);
    const got = await new Promise<{ goAwayCode: number; closed: boolean }>((resolve, reject) => {
      const sock = netConnect(Number(url.port), url.hostname);
      let buf = Buffer.alloc(0);
      let goAwayCode = -1;
      sock.on('connect', () => {
        const settings = Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
        const dataOnZero = Buffer.from([0, 0, 1, 0x0, 0, 0, 0, 0, 0, 0x61]);
        sock.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), settings, dataOnZero]));
      });
      sock.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        for (let off = 0; off + 9 <= buf.length; ) {
          const len = buf.readUIntBE(off, 3);
          if (off + 9 + len > buf.length) break;
          if (buf[off + 3] === 0x7) goAwayCode = buf.readUInt32BE(off + 9 + 4);
          off += 9 + len;
        }
      });
      sock.on('error', reject);
      sock.on('close', () => resolve({ goAwayCode, closed: true }));
      setTimeout(() => reject(new Error('connection not closed')), 5000).unref();
    });
    expect(got).toEqual({ goAwayCode: 0x1, closed: true });
    expect((await call(session(cairn), '/etcdserverpb.KV/Put', put('h2/after-goaway', 'x'))).code).toBe(Status.OK);
  });

  it('decodes what encodeHeaders writes as a client request (literal header fields, no Huffman)', async () => {
    const url = new URL(cairn.endpoint);
    const block = encodeHeaders([
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', '/etcdserverpb.KV/Put'],
      [':authority', 'passthrough:///http://any'], // what etcdctl sends; not for us to judge
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
    ]);
    const body = put('h2/literal', 'y');
    const status = await new Promise<string>((resolve, reject) => {
      const sock = netConnect(Number(url.port), url.hostname);
      let buf = Buffer.alloc(0);
      sock.on('connect', () => {
        const head = (len: number, type: number, flags: number, id: number): Buffer => {
          const h = Buffer.alloc(9);
          h.writeUIntBE(len, 0, 3);
          h[3] = type;
          h[4] = flags;
          h.writeUInt32BE(id, 5);
          return h;
        };
        sock.write(
          Buffer.concat([
            Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
            head(0, 0x4, 0, 0),
            head(block.length, 0x1, 0x4, 1),
            block,
            head(body.length, 0x0, 0x1, 1),
            body,
          ]),
        );
      });
      sock.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        // The trailers are literal fields without indexing: the text is in the clear.
        const text = buf.toString('latin1');
        const i = text.indexOf('grpc-status');
        if (i >= 0 && text.length > i + 13) {
          resolve(text.slice(i + 12, i + 13));
          sock.destroy();
        }
      });
      sock.on('error', reject);
      setTimeout(() => reject(new Error('no answer')), 5000).unref();
    });
    expect(status).toBe('0');
  });

  it('sends GOAWAY to open connections when the member stops', async () => {
    const own = await startCairn();
    const s = connect(own.endpoint);
    s.on('error', () => undefined);
    expect((await call(s, '/etcdserverpb.KV/Put', put('h2/stop', 'x'))).code).toBe(Status.OK);
    const goaway = new Promise<number>((resolve) => s.on('goaway', (code) => resolve(code)));
    await own.stop();
    expect(await goaway).toBe(0);
    s.destroy();
  });
});
