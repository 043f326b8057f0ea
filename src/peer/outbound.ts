import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { socketClosed, watchClose, type TransportContext } from './context';
import { encodeFrame, FRAME_HEADER_BYTES, FrameDecoder, FrameType, HANDSHAKE_FRAME_BYTES_MAX, ProtocolError, sealFrame, type Frame } from './frame';
import { decodeHelloAck, encodeHello, HelloStatus, idHex, PEER_PROTOCOL_VERSION, StreamKind } from './handshake';
import { backoffDelayMs, MESSAGE_BYTES_MAX, TCP_KEEPALIVE_MS } from './options';
import { MessageQueue } from './queue';
import { parsePeerUrl, type Endpoint } from './url';

export const enum StreamState {
  Idle,
  Dialing,
  Handshaking,
  Connected,
  Backoff,
  Stopped,
}

export interface PeerStats {
  connected: boolean;
  /** Messages dropped: queue full, message too large, or peer unknown is not counted here. */
  dropped: number;
  /** Messages written to the connection. */
  sent: number;
  /** Messages waiting for the connection. */
  queued: number;
  /** BATCH frames written (each carries one or more messages). */
  batches: number;
  bytesWritten: number;
  /** Round trip of the last ping on the message stream. */
  rttSeconds?: number;
  /** Why the last connection attempt failed or the last connection ended. */
  lastError?: string;
}

const PING_BODY_BYTES = 8;

/**
 * The message stream to one peer: a bounded queue, one connection at a time (the peer's
 * URLs tried in turn), batches written in send order, and reconnection with backoff.
 */
export class OutboundStream {
  state = StreamState.Idle;
  private started = false;
  private endpoints: Endpoint[];
  private endpointIndex = 0;
  private attempt = 0;
  private socket: Socket | undefined;
  private decoder = new FrameDecoder(HANDSHAKE_FRAME_BYTES_MAX);
  private timer: NodeJS.Timeout | undefined;
  readonly queue: MessageQueue;
  /** Set by the transport while a flush of this stream is scheduled. */
  flushScheduled = false;

  lastHeardMs = 0;
  private lastOutboundHeardMs = 0;
  dropped = 0;
  sent = 0;
  batches = 0;
  bytesWritten = 0;
  rttSeconds: number | undefined;
  lastError: string | undefined;
  private lastLoggedError: string | undefined;

  private readonly onDrain = (): void => this.flush();

  constructor(
    private readonly ctx: TransportContext,
    readonly id: bigint,
    urls: string[],
  ) {
    this.endpoints = urls.map(parsePeerUrl);
    this.queue = new MessageQueue(ctx.limits.queueMessagesMax, ctx.limits.queueBytesMax);
  }

  get endpointList(): Endpoint[] {
    return this.endpoints;
  }

  get urls(): string[] {
    return this.endpoints.map((e) => e.url);
  }

  /** Queues a message; false if it was dropped. Never throws, never blocks. */
  enqueue(message: Uint8Array): boolean {
    if (this.state === StreamState.Stopped || message.length > MESSAGE_BYTES_MAX || !this.queue.push(message)) {
      this.dropped++;
      return false;
    }
    return true;
  }

  /** Begins dialing (the transport calls this once it is started). */
  start(): void {
    this.started = true;
    if (this.state === StreamState.Idle) this.dial();
  }

  setUrls(urls: string[]): void {
    const endpoints = urls.map(parsePeerUrl);
    const current = this.endpoints[this.endpointIndex % Math.max(1, this.endpoints.length)];
    this.endpoints = endpoints;
    const keep = current !== undefined ? endpoints.findIndex((e) => e.url === current.url) : -1;
    if (keep >= 0) {
      this.endpointIndex = keep;
      return;
    }
    // The URL in use is gone: start over on the new list at once.
    this.endpointIndex = 0;
    this.attempt = 0;
    if (this.socket !== undefined) this.socket.destroy();
    else if (this.state === StreamState.Backoff || (this.state === StreamState.Idle && this.started)) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.dial();
    }
  }

  /** Handshake done and the socket not (being) closed. */
  isConnected(): boolean {
    return this.state === StreamState.Connected && this.socket !== undefined && !this.socket.destroyed;
  }

  /** Writes queued messages as BATCH frames until the queue is empty or the socket is full. */
  flush(): void {
    if (!this.isConnected()) return;
    const socket = this.socket!;
    const queue = this.queue;
    const batchBytesMax = this.ctx.limits.batchBytesMax;
    while (queue.length > 0 && !socket.writableNeedDrain) {
      let count = 0;
      let bodyBytes = 0;
      while (count < queue.length) {
        const add = 4 + queue.at(count).length;
        if (count > 0 && bodyBytes + add > batchBytesMax) break;
        bodyBytes += add;
        count++;
      }
      const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bodyBytes);
      let offset = FRAME_HEADER_BYTES;
      for (let i = 0; i < count; i++) {
        const m = queue.shift();
        frame.writeUInt32BE(m.length, offset);
        frame.set(m, offset + 4);
        offset += 4 + m.length;
      }
      socket.write(sealFrame(frame, FrameType.Batch));
      this.sent += count;
      this.batches++;
      this.bytesWritten += frame.length;
    }
  }

  /** Called every ping interval: declares a silent connection dead, else sends a ping. */
  tick(nowMs: number): void {
    if (!this.isConnected()) return;
    if (nowMs - this.lastOutboundHeardMs > this.ctx.limits.idleTimeoutMs) {
      this.fail(this.socket!, `no answer to pings for ${this.ctx.limits.idleTimeoutMs} ms`);
      return;
    }
    const body = Buffer.allocUnsafe(PING_BODY_BYTES);
    body.writeDoubleBE(performance.now(), 0);
    this.socket!.write(encodeFrame(FrameType.Ping, body));
  }

  stats(): PeerStats {
    return {
      connected: this.isConnected(),
      dropped: this.dropped,
      sent: this.sent,
      queued: this.queue.length,
      batches: this.batches,
      bytesWritten: this.bytesWritten,
      rttSeconds: this.rttSeconds,
      lastError: this.lastError,
    };
  }

  /** Closes the connection for good and forgets queued messages. */
  stop(): Promise<void> {
    this.state = StreamState.Stopped;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.clear();
    const socket = this.socket;
    this.socket = undefined;
    if (socket === undefined) return Promise.resolve();
    socket.destroy();
    return socketClosed(socket);
  }

  private dial(): void {
    if (this.endpoints.length === 0) {
      this.state = StreamState.Idle;
      return;
    }
    const endpoint = this.endpoints[this.endpointIndex % this.endpoints.length]!;
    this.state = StreamState.Dialing;
    const { socket, connected } = this.ctx.sockets.dial(endpoint, this.ctx.limits.dialTimeoutMs);
    watchClose(socket);
    this.socket = socket;
    this.decoder = new FrameDecoder(HANDSHAKE_FRAME_BYTES_MAX);
    socket.on('error', (err) => this.noteError(socket, `${endpoint.url}: ${err.message}`));
    socket.on('close', () => this.onClose(socket, endpoint));
    connected.then(
      () => this.onConnected(socket, endpoint),
      () => undefined, // reported by the 'error' and 'close' listeners
    );
  }

  private onConnected(socket: Socket, endpoint: Endpoint): void {
    if (socket !== this.socket) return;
    this.state = StreamState.Handshaking;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, TCP_KEEPALIVE_MS);
    socket.setTimeout(this.ctx.limits.handshakeTimeoutMs, () =>
      this.fail(socket, `no handshake answer within ${this.ctx.limits.handshakeTimeoutMs} ms`),
    );
    socket.on('data', (chunk: Buffer) => this.onData(socket, endpoint, chunk));
    socket.on('drain', this.onDrain);
    socket.write(
      encodeHello({
        version: PEER_PROTOCOL_VERSION,
        kind: StreamKind.Messages,
        clusterId: this.ctx.clusterId,
        fromId: this.ctx.memberId,
        toId: this.id,
      }),
    );
  }

  private onData(socket: Socket, endpoint: Endpoint, chunk: Buffer): void {
    if (socket !== this.socket) return;
    this.decoder.push(chunk);
    try {
      for (let frame = this.decoder.next(); frame !== null; frame = this.decoder.next()) {
        this.onFrame(socket, endpoint, frame);
        if (socket !== this.socket) return;
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.fail(socket, `protocol error: ${err.message}`);
    }
  }

  private onFrame(socket: Socket, endpoint: Endpoint, frame: Frame): void {
    const nowMs = performance.now();
    if (this.state === StreamState.Handshaking) {
      if (frame.type !== FrameType.HelloAck) throw new ProtocolError(`expected a handshake answer, got frame type ${frame.type}`);
      const ack = decodeHelloAck(frame.body);
      if (ack.status !== HelloStatus.Ok) {
        this.fail(socket, `refused by the peer: ${ack.reason}`);
        return;
      }
      socket.setTimeout(0);
      this.state = StreamState.Connected;
      this.attempt = 0;
      this.lastOutboundHeardMs = nowMs;
      this.lastHeardMs = nowMs;
      this.lastError = undefined;
      this.lastLoggedError = undefined;
      this.ctx.log.info({ peer_id: idHex(this.id), url: endpoint.url }, 'peer stream connected');
      this.flush();
      return;
    }
    if (frame.type !== FrameType.Pong || frame.body.length !== PING_BODY_BYTES) {
      throw new ProtocolError(`unexpected frame type ${frame.type} on a message stream`);
    }
    this.lastOutboundHeardMs = nowMs;
    this.ctx.heard(this.id);
    this.rttSeconds = Math.max(0, nowMs - frame.body.readDoubleBE(0)) / 1000;
  }

  /** Ends `socket` because of `reason`; onClose then decides when to try again. */
  private fail(socket: Socket, reason: string): void {
    this.noteError(socket, reason);
    socket.destroy();
  }

  private noteError(socket: Socket, reason: string): void {
    if (socket !== this.socket) return;
    this.lastError = reason;
    // Log a failure once while it repeats, so a peer that is down does not flood the log.
    if (reason !== this.lastLoggedError) {
      this.lastLoggedError = reason;
      this.ctx.log.warn({ peer_id: idHex(this.id), reason }, 'peer stream failed');
    }
  }

  private onClose(socket: Socket, endpoint: Endpoint): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    socket.off('drain', this.onDrain);
    if (this.state === StreamState.Stopped) return;
    if (this.endpoints.length === 0) {
      this.state = StreamState.Idle; // updatePeer() with URLs dials again
      return;
    }
    const wasConnected = this.state === StreamState.Connected;
    if (wasConnected) {
      this.lastError ??= 'connection closed by the peer';
      this.ctx.log.info({ peer_id: idHex(this.id), url: endpoint.url, reason: this.lastError }, 'peer stream disconnected');
      this.attempt = 0;
      this.backoff();
      return;
    }
    // Try the peer's next URL at once; back off after a full round of failures.
    this.endpointIndex = (this.endpointIndex + 1) % this.endpoints.length;
    if (this.endpointIndex === 0) this.backoff();
    else this.dial();
  }

  private backoff(): void {
    const { backoffMinMs, backoffMaxMs } = this.ctx.limits;
    const delayMs = backoffDelayMs(this.attempt++, backoffMinMs, backoffMaxMs);
    this.state = StreamState.Backoff;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.state === StreamState.Backoff) this.dial();
    }, delayMs);
  }
}
