import type { Server, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import pino, { type Logger } from 'pino';
import { closeCallbacksRun, errorMessage, socketClosed, type PeerHandlers, type TransportContext } from './context';
import { idHex } from './handshake';
import { InboundConnection, type InboundRegistry } from './inbound';
import { INBOUND_SNAPSHOTS_MAX, resolveLimits, SNAPSHOT_METADATA_BYTES_MAX, type Limits, type PeerTransportOptions } from './options';
import { OutboundStream, type PeerStats } from './outbound';
import { SnapshotSender } from './snapshot';
import { plainSockets, type PeerSockets } from './sockets';
import { parsePeerUrl, type Endpoint } from './url';

export interface ListeningAddress {
  /** The URL with the bound port filled in (port 0 resolved). */
  url: string;
  port?: number;
  path?: string;
}

const enum TransportState {
  New,
  Started,
  Stopped,
}

/**
 * The transport between the members of one cluster. Each member opens one message stream
 * to each peer (messages flow dialer to listener, in send order) and a connection of its
 * own per snapshot. Wire format: handshake.ts and frame.ts.
 */
export class PeerTransport implements InboundRegistry {
  private state = TransportState.New;
  private readonly ctx: TransportContext;
  private readonly limits: Limits;
  private readonly log: Logger;
  private readonly sockets: PeerSockets;
  private readonly listenEndpoints: Endpoint[];
  private readonly peers = new Map<bigint, OutboundStream>();
  private servers: Server[] = [];
  private readonly inbound = new Set<InboundConnection>();
  private readonly inboundMessageStreams = new Map<bigint, InboundConnection>();
  private snapshotsReceiving = 0;
  private readonly snapshotSenders = new Set<SnapshotSender>();
  private readonly snapshotsSendingTo = new Set<bigint>();
  private pingTimer: NodeJS.Timeout | undefined;
  private flushImmediate: NodeJS.Immediate | undefined;
  private readonly flushPending: OutboundStream[] = [];
  /** Messages for members that are not peers (never added, or removed). */
  droppedUnknownPeer = 0;

  private readonly flushAll = (): void => {
    this.flushImmediate = undefined;
    const pending = this.flushPending;
    for (let i = 0; i < pending.length; i++) {
      const peer = pending[i]!;
      peer.flushScheduled = false;
      peer.flush();
    }
    pending.length = 0;
  };

  constructor(opts: PeerTransportOptions, handlers: PeerHandlers) {
    this.limits = resolveLimits(opts);
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ member_id: idHex(opts.memberId) });
    this.sockets = opts.sockets ?? plainSockets;
    this.listenEndpoints = opts.listenUrls.map(parsePeerUrl);
    this.ctx = {
      clusterId: opts.clusterId,
      onClusterId: opts.onClusterId,
      memberId: opts.memberId,
      log: this.log,
      limits: this.limits,
      sockets: this.sockets,
      handlers,
      heard: (from) => {
        const peer = this.peers.get(from);
        if (peer !== undefined) peer.lastHeardMs = performance.now();
      },
    };
  }

  async start(): Promise<{ listening: ListeningAddress[] }> {
    if (this.state !== TransportState.New) throw new Error('peer transport already started');
    this.state = TransportState.Started;
    try {
      for (const endpoint of this.listenEndpoints) {
        const server = await this.sockets.listen(endpoint, (socket) => this.accept(socket));
        server.on('error', (err) => this.log.error({ url: endpoint.url, err: err.message }, 'peer listener error'));
        this.servers.push(server);
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    const listening = this.servers.map((s, i) => listeningAddress(s, this.listenEndpoints[i]!));
    this.log.info({ urls: listening.map((l) => l.url) }, 'listening for peers');
    this.pingTimer = setInterval(() => this.tick(), this.limits.pingIntervalMs);
    for (const peer of this.peers.values()) peer.start();
    return { listening };
  }

  addPeer(id: bigint, urls: string[]): void {
    if (this.state === TransportState.Stopped) return;
    if (this.peers.has(id)) throw new Error(`member ${idHex(id)} is already a peer`);
    if (id === this.ctx.memberId) throw new Error(`member ${idHex(id)} is this member`);
    const peer = new OutboundStream(this.ctx, id, urls);
    this.peers.set(id, peer);
    if (this.state === TransportState.Started) peer.start();
  }

  updatePeer(id: bigint, urls: string[]): void {
    const peer = this.peers.get(id);
    if (peer === undefined) throw new Error(`member ${idHex(id)} is not a peer`);
    peer.setUrls(urls);
  }

  removePeer(id: bigint): void {
    const peer = this.peers.get(id);
    if (peer === undefined) return;
    this.peers.delete(id);
    void peer.stop();
    this.inboundMessageStreams.get(id)?.close('member removed');
  }

  /** Queues `message` for `to`; never throws or blocks. Do not modify `message` afterwards. */
  send(to: bigint, message: Uint8Array): void {
    const peer = this.peers.get(to);
    if (peer === undefined) {
      this.droppedUnknownPeer++;
      return;
    }
    if (!peer.enqueue(message) || peer.flushScheduled || !peer.isConnected()) return;
    peer.flushScheduled = true;
    this.flushPending.push(peer);
    this.flushImmediate ??= setImmediate(this.flushAll);
  }

  /**
   * Writes what send() queued now rather than at the next setImmediate. Raft calls it after a
   * Ready's messages: one write per peer either way, and the appends leave before whatever
   * else the rest of this turn of the event loop does (apply, client requests).
   */
  flush(): void {
    if (this.flushImmediate === undefined) return;
    clearImmediate(this.flushImmediate);
    this.flushAll();
  }

  /**
   * Streams a snapshot to `to` on a connection of its own, chunk by chunk with backpressure.
   * Resolves when the receiver's onSnapshot resolved; rejects if it failed, the stream broke,
   * `signal` aborted, or the transport stopped. One snapshot at a time per peer.
   */
  async sendSnapshot(to: bigint, metadata: Uint8Array, data: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<void> {
    if (this.state !== TransportState.Started) throw new Error('peer transport is not running');
    const peer = this.peers.get(to);
    if (peer === undefined) throw new Error(`member ${idHex(to)} is not a peer`);
    if (metadata.length > SNAPSHOT_METADATA_BYTES_MAX) {
      throw new Error(`snapshot metadata of ${metadata.length} bytes exceeds ${SNAPSHOT_METADATA_BYTES_MAX}`);
    }
    if (this.snapshotsSendingTo.has(to)) throw new Error(`a snapshot is already being sent to member ${idHex(to)}`);
    this.snapshotsSendingTo.add(to);
    try {
      const sender = await this.openSnapshotStream(to, peer.endpointList);
      const onAbort = (): void => void sender.close('aborted');
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        if (signal?.aborted === true) throw new Error('snapshot send aborted');
        this.log.info({ peer_id: idHex(to), url: sender.endpoint.url }, 'sending snapshot');
        await sender.send(metadata, data, this.limits.snapshotChunkBytes);
        this.log.info({ peer_id: idHex(to) }, 'snapshot sent and installed');
      } catch (err) {
        this.log.warn({ peer_id: idHex(to), reason: errorMessage(err) }, 'snapshot send failed');
        throw err;
      } finally {
        signal?.removeEventListener('abort', onAbort);
        this.snapshotSenders.delete(sender);
        await sender.close();
      }
    } finally {
      this.snapshotsSendingTo.delete(to);
    }
  }

  /** Connected to `to` and heard from it within the last few ping intervals. */
  isActive(to: bigint): boolean {
    const peer = this.peers.get(to);
    return peer !== undefined && peer.isConnected() && performance.now() - peer.lastHeardMs <= this.limits.activeWindowMs;
  }

  stats(): Map<bigint, PeerStats> {
    const out = new Map<bigint, PeerStats>();
    for (const [id, peer] of this.peers) out.set(id, peer.stats());
    return out;
  }

  /** Closes listeners and every connection; rejects snapshots in flight. No timer is left. */
  async stop(): Promise<void> {
    if (this.state === TransportState.Stopped) return;
    this.state = TransportState.Stopped;
    clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    if (this.flushImmediate !== undefined) clearImmediate(this.flushImmediate);
    this.flushImmediate = undefined;
    this.flushPending.length = 0;
    const closing: Promise<void>[] = [];
    for (const server of this.servers) closing.push(new Promise((resolve) => server.close(() => resolve())));
    this.servers = [];
    for (const conn of this.inbound) {
      conn.close('transport stopped');
      closing.push(socketClosed(conn.socket));
    }
    for (const peer of this.peers.values()) closing.push(peer.stop());
    this.peers.clear();
    for (const sender of this.snapshotSenders) closing.push(sender.close('transport stopped'));
    await Promise.all(closing);
    await closeCallbacksRun();
    this.log.info('peer transport stopped');
  }

  // InboundRegistry

  messagesAccepted(conn: InboundConnection): void {
    const previous = this.inboundMessageStreams.get(conn.from);
    if (previous !== undefined && previous !== conn) previous.close('replaced by a newer stream from the same member');
    this.inboundMessageStreams.set(conn.from, conn);
  }

  acquireSnapshotSlot(): boolean {
    if (this.snapshotsReceiving >= INBOUND_SNAPSHOTS_MAX) return false;
    this.snapshotsReceiving++;
    return true;
  }

  closed(conn: InboundConnection): void {
    this.inbound.delete(conn);
    if (this.inboundMessageStreams.get(conn.from) === conn) this.inboundMessageStreams.delete(conn.from);
    if (conn.holdsSnapshot) this.snapshotsReceiving--;
  }

  private accept(socket: Socket): void {
    if (this.state !== TransportState.Started) {
      socket.destroy(); // accepted while stopping: not tracked, but closes on its own
      return;
    }
    this.inbound.add(new InboundConnection(this.ctx, this, socket));
  }

  private async openSnapshotStream(to: bigint, endpoints: Endpoint[]): Promise<SnapshotSender> {
    const errors: string[] = [];
    for (const endpoint of endpoints) {
      if (this.state !== TransportState.Started) break;
      const { socket, connected } = this.sockets.dial(endpoint, this.limits.dialTimeoutMs);
      const sender = new SnapshotSender(this.ctx, to, endpoint, socket, connected);
      this.snapshotSenders.add(sender);
      try {
        await sender.handshake();
        if (this.state !== TransportState.Started) throw new Error('peer transport stopped');
        return sender;
      } catch (err) {
        errors.push(errorMessage(err));
        this.snapshotSenders.delete(sender);
        await sender.close();
      }
    }
    throw new Error(`could not open a snapshot stream to member ${idHex(to)}: ${errors.join('; ') || 'transport stopped'}`);
  }

  private tick(): void {
    const nowMs = performance.now();
    for (const peer of this.peers.values()) peer.tick(nowMs);
  }
}

function listeningAddress(server: Server, endpoint: Endpoint): ListeningAddress {
  const address = server.address();
  if (endpoint.kind === 'unix' || typeof address === 'string' || address === null) {
    return { url: endpoint.url, path: endpoint.kind === 'unix' ? endpoint.path : String(address) };
  }
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { url: `http://${host}:${address.port}`, port: address.port };
}
