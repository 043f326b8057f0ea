import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FRAME_BYTES_MAX } from '../../src/peer';
import { encodeFrame, FRAME_HEADER_BYTES, FrameType } from '../../src/peer/frame';
import { decodeHelloAck, encodeHello, HelloStatus, PEER_PROTOCOL_VERSION, StreamKind } from '../../src/peer/handshake';
import { CLUSTER_ID, range, seqMessage, seqs, sleep, startMember, waitFor, type Member } from './helpers';

const running: Member[] = [];
async function member(...args: Parameters<typeof startMember>): Promise<Member> {
  const m = await startMember(...args);
  running.push(m);
  return m;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.t.stop()));
});

/** A raw connection to `url`, collecting what the member answers. */
async function rawConnect(url: string): Promise<{ socket: net.Socket; data: () => Buffer; closed: Promise<void> }> {
  const u = new URL(url);
  const socket = net.connect({ host: u.hostname, port: Number(u.port) });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, data: () => Buffer.concat(chunks), closed };
}

function hello(toId: bigint, clusterId = CLUSTER_ID, version = PEER_PROTOCOL_VERSION): Buffer {
  return encodeHello({ version, kind: StreamKind.Messages, clusterId, fromId: 7n, toId });
}

describe('peer handshake', () => {
  it('a member of another cluster is refused, and both sides log why; the dialer keeps backing off', async () => {
    const a = await member(1n, { clusterId: 0xaaaan });
    const b = await member(2n);
    a.t.addPeer(2n, [b.url]);
    a.t.send(2n, seqMessage(1));
    await waitFor(() => a.t.stats().get(2n)!.lastError?.includes('cluster ID mismatch') === true, 'the refusal');
    expect(b.log.has('refused peer connection', 'cluster ID mismatch')).toBe(true);
    expect(a.log.has('peer stream failed', 'refused by the peer: cluster ID mismatch')).toBe(true);
    const refusal = b.log.lines.find((l) => l.msg === 'refused peer connection')!;
    expect(refusal.reason).toBe('cluster ID mismatch: sender is in cluster aaaa, this member is in cluster fedcba9876543210');
    await sleep(300);
    // It kept trying (several refusals on b), with backoff (not hundreds), and delivered nothing.
    const refusals = b.log.lines.filter((l) => l.msg === 'refused peer connection').length;
    expect(refusals).toBeGreaterThan(1);
    expect(refusals).toBeLessThan(30);
    expect(b.received.size).toBe(0);
    expect(a.t.isActive(2n)).toBe(false);
    expect(a.t.stats().get(2n)).toMatchObject({ connected: false, sent: 0, queued: 1 });
  });

  it('a connection addressed to another member ID is refused', async () => {
    const a = await member(1n);
    const b = await member(2n);
    a.t.addPeer(3n, [b.url]); // b's URL, but a thinks it is member 3
    a.t.send(3n, seqMessage(1));
    await waitFor(() => a.t.stats().get(3n)!.lastError?.includes('member ID mismatch') === true, 'the refusal');
    expect(a.t.stats().get(3n)!.lastError).toBe('refused by the peer: member ID mismatch: sender addressed member 3, this is member 2');
    expect(b.log.has('refused peer connection', 'member ID mismatch')).toBe(true);
    expect(b.received.size).toBe(0);
  });

  it('a handshake of another protocol version is answered with a refusal naming the versions', async () => {
    const b = await member(2n);
    const c = await rawConnect(b.url);
    c.socket.write(hello(2n, CLUSTER_ID, 99));
    await c.closed;
    const data = c.data();
    expect(data[8]).toBe(FrameType.HelloAck);
    const ack = decodeHelloAck(data.subarray(FRAME_HEADER_BYTES));
    expect(ack.status).toBe(HelloStatus.VersionMismatch);
    expect(ack.clusterId).toBe(CLUSTER_ID);
    expect(ack.memberId).toBe(2n);
    expect(ack.reason).toMatch(/version 99 is not supported/);
  });

  it('garbage instead of a handshake closes that connection; the member keeps serving', async () => {
    const b = await member(2n);
    const c = await rawConnect(b.url);
    c.socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await c.closed;
    expect(b.log.has('closing peer connection: protocol error')).toBe(true);
    await expectStillServing(b);
  });

  it('a length beyond the handshake bound closes the connection before anything is buffered', async () => {
    const b = await member(2n);
    const c = await rawConnect(b.url);
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.writeUInt32LE(0xffffffff, 0);
    header[8] = FrameType.Hello;
    c.socket.write(header);
    await c.closed;
    expect(b.log.has('closing peer connection: protocol error', 'exceeds the bound of 1024')).toBe(true);
    await expectStillServing(b);
  });

  it('after the handshake, an oversized frame or a bad checksum closes that connection only', async () => {
    const b = await member(2n);
    const c1 = await rawConnect(b.url);
    c1.socket.write(hello(2n));
    await waitFor(() => c1.data().length > 0, 'the handshake answer');
    expect(decodeHelloAck(c1.data().subarray(FRAME_HEADER_BYTES)).status).toBe(HelloStatus.Ok);
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.writeUInt32LE(FRAME_BYTES_MAX + 1, 0);
    header[8] = FrameType.Batch;
    c1.socket.write(header);
    await c1.closed;
    expect(b.log.has('closing peer connection: protocol error', `exceeds the bound of ${FRAME_BYTES_MAX}`)).toBe(true);

    const c2 = await rawConnect(b.url);
    c2.socket.write(hello(2n));
    const batch = encodeFrame(FrameType.Batch, Buffer.from([0, 0, 0, 1, 42]));
    batch[FRAME_HEADER_BYTES + 4] ^= 0xff; // corrupt the message byte
    c2.socket.write(batch);
    await c2.closed;
    expect(b.log.has('closing peer connection: protocol error', 'frame checksum mismatch')).toBe(true);

    const c3 = await rawConnect(b.url);
    c3.socket.write(hello(2n));
    // A well-formed frame whose batch claims more bytes than it holds.
    c3.socket.write(encodeFrame(FrameType.Batch, Buffer.from([0, 0, 1, 0, 42])));
    await c3.closed;
    expect(b.log.has('closing peer connection: protocol error', 'message runs past the end of its batch')).toBe(true);
    expect(b.received.size).toBe(0);
    await expectStillServing(b);
  });

  it('a connection that never completes its handshake is closed after the timeout', async () => {
    const b = await member(2n, { handshakeTimeoutMs: 100 });
    const c = await rawConnect(b.url);
    const t0 = Date.now();
    await c.closed;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('a raw but well-formed sender is understood: the wire format is as documented', async () => {
    const b = await member(2n);
    const c = await rawConnect(b.url);
    c.socket.write(hello(2n));
    const body = Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from('abc'), Buffer.from([0, 0, 0, 0])]);
    c.socket.write(encodeFrame(FrameType.Batch, body));
    await waitFor(() => (b.received.get(7n)?.length ?? 0) === 2, 'two messages');
    expect(b.received.get(7n)!.map((m) => m.toString())).toEqual(['abc', '']);
    c.socket.destroy();
  });
});

async function expectStillServing(b: Member): Promise<void> {
  const a = await member(1n);
  a.t.addPeer(b.id, [b.url]);
  for (let i = 0; i < 10; i++) a.t.send(b.id, seqMessage(i));
  await waitFor(() => (b.received.get(1n)?.length ?? 0) === 10, 'messages from a well-behaved peer');
  expect(seqs(b.received.get(1n))).toEqual(range(0, 10));
}
