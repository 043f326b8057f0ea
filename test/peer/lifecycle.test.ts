import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { PeerTransport } from '../../src/peer';
import { FRAME_HEADER_BYTES, FrameDecoder, FrameType, HANDSHAKE_FRAME_BYTES_MAX } from '../../src/peer/frame';
import { decodeHello, encodeHelloAck, HelloStatus, PEER_PROTOCOL_VERSION } from '../../src/peer/handshake';
import { CLUSTER_ID, FAST, range, seqMessage, seqs, sleep, startMember, waitFor } from './helpers';

/** Handles that a transport could leave behind. */
function handleCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) if (/TCP|Pipe|Timeout|Immediate/.test(r)) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

describe('peer transport lifecycle', () => {
  it('stop() leaves no socket, server or timer behind, even with traffic and a dead peer', async () => {
    const baseline = handleCounts();
    const a = await startMember(1n);
    const b = await startMember(2n, { listenUrls: ['http://127.0.0.1:0', 'http://127.0.0.1:0'] });
    a.t.addPeer(2n, [b.url]);
    b.t.addPeer(1n, [a.url]);
    a.t.addPeer(3n, ['http://127.0.0.1:1']); // never reachable: a backoff timer is pending
    for (let i = 0; i < 100; i++) {
      a.t.send(2n, seqMessage(i));
      b.t.send(1n, seqMessage(i));
      a.t.send(3n, seqMessage(i));
    }
    await waitFor(() => (b.received.get(1n)?.length ?? 0) === 100 && (a.received.get(2n)?.length ?? 0) === 100, 'traffic');
    expect(handleCounts()).not.toEqual(baseline);
    a.t.send(2n, seqMessage(100)); // a flush is scheduled when stop() runs
    await Promise.all([a.t.stop(), b.t.stop()]);
    expect(handleCounts()).toEqual(baseline);
    // Stopped transports stay quiet.
    a.t.send(2n, seqMessage(1));
    expect(a.t.stats().size).toBe(0);
  });

  it('a peer that stops answering pings turns inactive, then its stream is dropped and redialled', async () => {
    // A fake peer that accepts the handshake and then never answers.
    const hellos: bigint[] = [];
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      const decoder = new FrameDecoder(HANDSHAKE_FRAME_BYTES_MAX);
      socket.on('data', (chunk: Buffer) => {
        decoder.push(chunk);
        for (let f = decoder.next(); f !== null; f = decoder.next()) {
          if (f.type !== FrameType.Hello) continue;
          hellos.push(decodeHello(f.body).fromId);
          socket.write(encodeHelloAck({ status: HelloStatus.Ok, version: PEER_PROTOCOL_VERSION, clusterId: CLUSTER_ID, memberId: 2n, reason: '' }));
        }
        decoder.bodyBytesMax = 1 << 20;
      });
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const a = await startMember(1n, { pingIntervalMs: 50 });
    try {
      a.t.addPeer(2n, [`http://127.0.0.1:${port}`]);
      await waitFor(() => a.t.stats().get(2n)!.connected, 'the connection');
      expect(a.t.isActive(2n)).toBe(true);
      await waitFor(() => !a.t.isActive(2n), 'inactivity (3 silent ping intervals)', 2000);
      await waitFor(() => a.t.stats().get(2n)!.lastError === 'no answer to pings for 250 ms', 'the idle timeout', 2000);
      await waitFor(() => hellos.length >= 2, 'a redial', 2000);
      expect(hellos[0]).toBe(1n);
    } finally {
      await a.t.stop();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a member that dials again replaces its older inbound stream', async () => {
    const a = await startMember(1n);
    const b = await startMember(2n);
    try {
      a.t.addPeer(2n, [b.url]);
      a.t.send(2n, seqMessage(0));
      await waitFor(() => (b.received.get(1n)?.length ?? 0) === 1, 'first message');
      // a restarts (same member ID) while b still holds the old connection open.
      const a2 = new PeerTransport({ clusterId: CLUSTER_ID, memberId: 1n, listenUrls: ['http://127.0.0.1:0'], ...FAST }, {
        onMessage: () => undefined,
        onSnapshot: () => Promise.resolve(),
      });
      await a2.start();
      a2.addPeer(2n, [b.url]);
      a2.send(2n, seqMessage(1));
      await waitFor(() => (b.received.get(1n)?.length ?? 0) === 2, 'message from the new stream');
      expect(b.log.has('inbound peer stream closed', 'replaced by a newer stream from the same member')).toBe(true);
      await a2.stop();
    } finally {
      await Promise.all([a.t.stop(), b.t.stop()]);
    }
  });

  it('removePeer closes the stream and drops what was queued; addPeer again starts afresh', async () => {
    const a = await startMember(1n);
    const b = await startMember(2n);
    try {
      a.t.addPeer(2n, [b.url]);
      a.t.send(2n, seqMessage(0));
      await waitFor(() => (b.received.get(1n)?.length ?? 0) === 1, 'first message');
      a.t.removePeer(2n);
      a.t.send(2n, seqMessage(1));
      expect(a.t.droppedUnknownPeer).toBe(1);
      expect(a.t.stats().has(2n)).toBe(false);
      await sleep(50);
      a.t.addPeer(2n, [b.url]);
      for (let i = 2; i < 5; i++) a.t.send(2n, seqMessage(i));
      await waitFor(() => (b.received.get(1n)?.length ?? 0) === 4, 'messages after re-adding');
      expect(seqs(b.received.get(1n))).toEqual([0, ...range(2, 5)]);
    } finally {
      await Promise.all([a.t.stop(), b.t.stop()]);
    }
  });

  it('TLS peer URLs without TLS settings fail with a clear error; unknown schemes and listen URLs without a port are refused', async () => {
    const h = { onMessage: () => undefined, onSnapshot: () => Promise.resolve() };
    const secure = new PeerTransport({ clusterId: 1n, memberId: 1n, listenUrls: ['https://127.0.0.1:0'] }, h);
    await expect(secure.start()).rejects.toThrow('a TLS peer URL needs --peer-cert-file/--peer-key-file or --peer-auto-tls');
    const t = new PeerTransport({ clusterId: 1n, memberId: 1n, listenUrls: [] }, h);
    expect(() => t.addPeer(2n, ['tcp://127.0.0.1:1'])).toThrow(/scheme must be http:\/\/, https:\/\/, unix:\/\/ or unixs:\/\//);
    expect(() => new PeerTransport({ clusterId: 1n, memberId: 1n, listenUrls: ['http://127.0.0.1'] }, h)).toThrow(/a port is required/);
    expect(FRAME_HEADER_BYTES).toBe(9);
  });
});
