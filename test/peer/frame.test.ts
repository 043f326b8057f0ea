import { describe, expect, it } from 'vitest';
import { encodeFrame, FRAME_HEADER_BYTES, FrameDecoder, frameHeader, FrameType, ProtocolError } from '../../src/peer/frame';
import { checkHello, decodeHello, encodeHello, HelloStatus, PEER_PROTOCOL_VERSION, StreamKind } from '../../src/peer/handshake';
import { MessageQueue } from '../../src/peer/queue';
import { parsePeerUrl } from '../../src/peer/url';
import { backoffDelayMs } from '../../src/peer/options';

function decodeAll(decoder: FrameDecoder): Array<{ type: number; body: string }> {
  const out: Array<{ type: number; body: string }> = [];
  for (let f = decoder.next(); f !== null; f = decoder.next()) out.push({ type: f.type, body: f.body.toString() });
  return out;
}

describe('peer framing', () => {
  it('frames split at every byte boundary decode to the same frames', () => {
    const stream = Buffer.concat([
      encodeFrame(FrameType.Batch, Buffer.from('first')),
      encodeFrame(FrameType.Ping, Buffer.alloc(0)),
      encodeFrame(FrameType.SnapshotChunk, Buffer.from('x'.repeat(300))),
    ]);
    const expected = [
      { type: FrameType.Batch, body: 'first' },
      { type: FrameType.Ping, body: '' },
      { type: FrameType.SnapshotChunk, body: 'x'.repeat(300) },
    ];
    for (let cut = 1; cut < stream.length; cut++) {
      const d = new FrameDecoder(1000);
      d.push(stream.subarray(0, cut));
      const got = decodeAll(d);
      d.push(stream.subarray(cut));
      got.push(...decodeAll(d));
      expect(got).toEqual(expected);
    }
    const byteByByte = new FrameDecoder(1000);
    const got = [];
    for (let i = 0; i < stream.length; i++) {
      byteByByte.push(stream.subarray(i, i + 1));
      got.push(...decodeAll(byteByByte));
    }
    expect(got).toEqual(expected);
  });

  it('a header written apart from its body (snapshot chunks) carries the same checksum', () => {
    const body = Buffer.from('snapshot bytes');
    expect(Buffer.concat([frameHeader(FrameType.SnapshotChunk, body), body])).toEqual(encodeFrame(FrameType.SnapshotChunk, body));
  });

  it('a length over the bound is refused from the header alone', () => {
    const d = new FrameDecoder(100);
    const header = encodeFrame(FrameType.Batch, Buffer.alloc(101)).subarray(0, FRAME_HEADER_BYTES);
    d.push(header);
    expect(() => d.next()).toThrow(new ProtocolError('frame body of 101 bytes exceeds the bound of 100'));
  });

  it('a flipped bit or an unknown frame type is refused', () => {
    const frame = encodeFrame(FrameType.Batch, Buffer.from('hello'));
    frame[FRAME_HEADER_BYTES + 1] ^= 1;
    const d = new FrameDecoder(100);
    d.push(frame);
    expect(() => d.next()).toThrow('frame checksum mismatch');
    const unknown = encodeFrame(FrameType.Batch, Buffer.from('x'));
    unknown[8] = 200;
    const d2 = new FrameDecoder(100);
    d2.push(unknown);
    expect(() => d2.next()).toThrow('unknown frame type 200');
  });
});

describe('peer handshake encoding', () => {
  it('round-trips full-precision uint64 IDs', () => {
    const hello = { version: PEER_PROTOCOL_VERSION, kind: StreamKind.Snapshot, clusterId: 2n ** 64n - 1n, fromId: 2n ** 63n + 1n, toId: 9007199254740993n };
    const frame = encodeHello(hello);
    expect(decodeHello(frame.subarray(FRAME_HEADER_BYTES))).toEqual(hello);
    expect(checkHello(hello, 2n ** 64n - 1n, 9007199254740993n)).toBeUndefined();
    // One off in the lowest bit, beyond a double's precision: refused.
    expect(checkHello(hello, 2n ** 64n - 1n, 9007199254740992n)?.status).toBe(HelloStatus.MemberMismatch);
    expect(checkHello(hello, 2n ** 64n - 2n, 9007199254740993n)?.status).toBe(HelloStatus.ClusterMismatch);
  });
});

describe('peer URLs', () => {
  it('parses http, https, unix and unixs URLs', () => {
    expect(parsePeerUrl('http://127.0.0.1:2380')).toEqual({ kind: 'tcp', url: 'http://127.0.0.1:2380', host: '127.0.0.1', port: 2380, secure: false });
    expect(parsePeerUrl('https://127.0.0.1:2380')).toEqual({ kind: 'tcp', url: 'https://127.0.0.1:2380', host: '127.0.0.1', port: 2380, secure: true });
    expect(parsePeerUrl('unixs:///x')).toMatchObject({ kind: 'unix', path: '/x', secure: true });
    expect(parsePeerUrl('http://[::1]:0/')).toMatchObject({ kind: 'tcp', host: '::1', port: 0 });
    expect(parsePeerUrl('http://node1:80')).toMatchObject({ kind: 'tcp', host: 'node1', port: 80 });
    expect(parsePeerUrl('unix:///run/cairn/peer.sock')).toEqual({ kind: 'unix', url: 'unix:///run/cairn/peer.sock', path: '/run/cairn/peer.sock', secure: false });
    expect(parsePeerUrl('unix://member1.peer')).toMatchObject({ kind: 'unix', path: 'member1.peer' });
  });

  it('refuses unknown schemes, paths and missing ports with the reason', () => {
    expect(() => parsePeerUrl('tcp://a:1')).toThrow('scheme must be http://, https://, unix:// or unixs://');
    expect(() => parsePeerUrl('127.0.0.1:2380')).toThrow('scheme must be http://, https://, unix:// or unixs://');
    expect(() => parsePeerUrl('http://a')).toThrow('a port is required');
    expect(() => parsePeerUrl('http://a:1/x')).toThrow('a path is not allowed');
    expect(() => parsePeerUrl('unix://')).toThrow('missing socket path');
    expect(() => parsePeerUrl(`unix:///${'x'.repeat(200)}`)).toThrow('longer than 107 bytes');
  });
});

describe('peer queue and backoff', () => {
  it('the message queue is a bounded FIFO by count and by bytes', () => {
    const q = new MessageQueue(3, 10);
    expect([q.push(Buffer.from('a')), q.push(Buffer.from('bb')), q.push(Buffer.from('ccc')), q.push(Buffer.from('d'))]).toEqual([true, true, true, false]);
    expect(Buffer.from(q.shift()).toString()).toBe('a');
    expect(q.push(Buffer.from('eeeeee'))).toBe(false); // 2 + 3 + 6 > 10 bytes
    expect(q.push(Buffer.from('eeee'))).toBe(true);
    expect([q.shift(), q.shift(), q.shift()].map((m) => Buffer.from(m).toString())).toEqual(['bb', 'ccc', 'eeee']);
    expect([q.length, q.bytes]).toEqual([0, 0]);
  });

  it('backoff doubles up to its maximum, with jitter in the upper half of each step', () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const stepMs = Math.min(1000, 10 * 2 ** attempt);
      const d = backoffDelayMs(attempt, 10, 1000);
      expect(d).toBeGreaterThanOrEqual(stepMs / 2);
      expect(d).toBeLessThanOrEqual(stepMs);
    }
  });
});
