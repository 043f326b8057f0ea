import type { Socket } from 'node:net';
import { errorMessage, watchClose, type TransportContext } from './context';
import { encodeFrame, FRAME_BYTES_MAX, FrameDecoder, FrameType, HANDSHAKE_FRAME_BYTES_MAX, ProtocolError, type Frame } from './frame';
import { checkHello, decodeHello, encodeHelloAck, HelloStatus, idHex, PEER_PROTOCOL_VERSION, StreamKind } from './handshake';
import { SNAPSHOT_METADATA_BYTES_MAX, TCP_KEEPALIVE_MS } from './options';
import { SnapshotInbox } from './snapshot';

/** How long a refused connection may stay open for its answer to be read. */
const REFUSED_LINGER_MS = 1000;

/** What an inbound connection asks of the transport that accepted it. */
export interface InboundRegistry {
  /** A message stream from `conn.from` is open; an older one from the same member is closed. */
  messagesAccepted(conn: InboundConnection): void;
  /** May one more snapshot be received now? Counted until release(). */
  acquireSnapshotSlot(): boolean;
  closed(conn: InboundConnection): void;
}

const enum InboundState {
  Handshake,
  Messages,
  Snapshot,
  Closing,
}

/** A connection another member opened to this one: a message stream or a snapshot stream. */
export class InboundConnection {
  private state = InboundState.Handshake;
  private readonly decoder = new FrameDecoder(HANDSHAKE_FRAME_BYTES_MAX);
  from = 0n;
  private readonly remote: string;
  private holdsSnapshotSlot = false;
  private inbox: SnapshotInbox | undefined;
  private snapshotEnded = false;
  private snapshotSettled = false;
  private closeReason: string | undefined;

  constructor(
    private readonly ctx: TransportContext,
    private readonly registry: InboundRegistry,
    readonly socket: Socket,
  ) {
    watchClose(socket);
    this.remote = socket.remoteAddress !== undefined ? `${socket.remoteAddress}:${socket.remotePort}` : 'unix socket';
    socket.setNoDelay(true);
    socket.setKeepAlive(true, TCP_KEEPALIVE_MS);
    socket.setTimeout(ctx.limits.handshakeTimeoutMs, () => this.close(`no handshake within ${ctx.limits.handshakeTimeoutMs} ms`));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => (this.closeReason ??= err.message));
    socket.on('close', () => this.onClose());
  }

  get holdsSnapshot(): boolean {
    return this.holdsSnapshotSlot;
  }

  get isMessageStream(): boolean {
    return this.state === InboundState.Messages;
  }

  close(reason: string): void {
    this.closeReason ??= reason;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.state === InboundState.Closing) return; // an answer is on its way; the rest is moot
    this.decoder.push(chunk);
    try {
      for (let frame = this.decoder.next(); frame !== null; frame = this.decoder.next()) {
        this.onFrame(frame);
        if ((this.state as InboundState) === InboundState.Closing) return;
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.ctx.log.warn({ remote: this.remote, peer_id: idHex(this.from), reason: err.message }, 'closing peer connection: protocol error');
      this.close(`protocol error: ${err.message}`);
    }
  }

  private onFrame(frame: Frame): void {
    switch (this.state) {
      case InboundState.Handshake:
        return this.onHello(frame);
      case InboundState.Messages:
        return this.onMessageFrame(frame);
      case InboundState.Snapshot:
        return this.onSnapshotFrame(frame);
      case InboundState.Closing:
        return;
    }
  }

  private onHello(frame: Frame): void {
    if (frame.type !== FrameType.Hello) throw new ProtocolError(`expected a handshake, got frame type ${frame.type}`);
    const hello = decodeHello(frame.body);
    this.from = hello.fromId;
    if (this.ctx.clusterId === 0n && hello.clusterId !== 0n && hello.toId !== 0n && (this.ctx.memberId === 0n || hello.toId === this.ctx.memberId)) {
      // A member joining an existing cluster knows neither the cluster's ID nor its own
      // (`member add` chose it) until a member of that cluster dials it.
      this.ctx.clusterId = hello.clusterId;
      this.ctx.memberId = hello.toId;
      this.ctx.log.info({ cluster_id: idHex(hello.clusterId), member_id: idHex(hello.toId), from: idHex(hello.fromId) }, 'joined the cluster of the first peer that dialed in');
      this.ctx.onClusterId?.(hello.clusterId, hello.toId);
    }
    let refusal = checkHello(hello, this.ctx.clusterId, this.ctx.memberId);
    if (refusal === undefined && hello.kind === StreamKind.Snapshot) {
      if (this.registry.acquireSnapshotSlot()) this.holdsSnapshotSlot = true;
      else refusal = { status: HelloStatus.Busy, reason: 'too many snapshots being received; retry later' };
    }
    const ack = {
      version: PEER_PROTOCOL_VERSION,
      clusterId: this.ctx.clusterId,
      memberId: this.ctx.memberId,
    };
    if (refusal !== undefined) {
      this.ctx.log.warn(
        { remote: this.remote, peer_id: idHex(hello.fromId), peer_cluster_id: idHex(hello.clusterId), reason: refusal.reason },
        'refused peer connection',
      );
      this.state = InboundState.Closing;
      this.closeReason = `refused: ${refusal.reason}`;
      this.socket.setTimeout(REFUSED_LINGER_MS, () => this.socket.destroy());
      this.socket.end(encodeHelloAck({ ...ack, status: refusal.status, reason: refusal.reason }));
      return;
    }
    this.socket.write(encodeHelloAck({ ...ack, status: HelloStatus.Ok, reason: '' }));
    this.ctx.heard(this.from);
    if (hello.kind === StreamKind.Messages) {
      this.state = InboundState.Messages;
      this.decoder.bodyBytesMax = FRAME_BYTES_MAX;
      // The dialer pings every interval: silence this long means it is gone.
      this.socket.setTimeout(this.ctx.limits.idleTimeoutMs, () => this.close(`silent for ${this.ctx.limits.idleTimeoutMs} ms`));
      this.registry.messagesAccepted(this);
    } else {
      this.state = InboundState.Snapshot;
      this.decoder.bodyBytesMax = SNAPSHOT_METADATA_BYTES_MAX;
      // The handler may hold the stream paused for as long as it needs; keep-alive watches the peer.
      this.socket.setTimeout(0);
    }
  }

  private onMessageFrame(frame: Frame): void {
    this.ctx.heard(this.from);
    if (frame.type === FrameType.Ping) {
      this.socket.write(encodeFrame(FrameType.Pong, frame.body));
      return;
    }
    if (frame.type !== FrameType.Batch) throw new ProtocolError(`unexpected frame type ${frame.type} on a message stream`);
    const body = frame.body;
    const handlers = this.ctx.handlers;
    let offset = 0;
    while (offset < body.length) {
      if (offset + 4 > body.length) throw new ProtocolError('truncated message length in batch');
      const end = offset + 4 + body.readUInt32BE(offset);
      if (end > body.length) throw new ProtocolError('message runs past the end of its batch');
      try {
        handlers.onMessage(this.from, body.subarray(offset + 4, end));
      } catch (err) {
        this.ctx.log.error({ peer_id: idHex(this.from), err: errorMessage(err) }, 'onMessage handler threw');
      }
      if (this.state !== InboundState.Messages) return; // closed by the handler (stop, removePeer)
      offset = end;
    }
  }

  private onSnapshotFrame(frame: Frame): void {
    if (frame.type === FrameType.SnapshotBegin && this.inbox === undefined) {
      this.startSnapshot(frame.body);
      return;
    }
    if (this.inbox === undefined || this.snapshotEnded) {
      throw new ProtocolError(`unexpected frame type ${frame.type} on a snapshot stream`);
    }
    if (frame.type === FrameType.SnapshotChunk) {
      this.inbox.push(frame.body);
      if (this.inbox.full) this.socket.pause();
    } else if (frame.type === FrameType.SnapshotEnd) {
      this.snapshotEnded = true;
      this.inbox.end();
    } else {
      throw new ProtocolError(`unexpected frame type ${frame.type} on a snapshot stream`);
    }
  }

  private startSnapshot(metadata: Buffer): void {
    const inbox = new SnapshotInbox(() => this.socket.resume());
    this.inbox = inbox;
    this.ctx.log.info({ peer_id: idHex(this.from), metadata_bytes: metadata.length }, 'receiving snapshot');
    let installed: Promise<void>;
    try {
      installed = this.ctx.handlers.onSnapshot(this.from, metadata, inbox);
    } catch (err) {
      installed = Promise.reject(err);
    }
    installed.then(
      () => this.finishSnapshot(undefined),
      (err: unknown) => this.finishSnapshot(errorMessage(err)),
    );
  }

  private finishSnapshot(error: string | undefined): void {
    this.snapshotSettled = true;
    if (error === undefined) this.ctx.log.info({ peer_id: idHex(this.from) }, 'snapshot installed');
    else this.ctx.log.warn({ peer_id: idHex(this.from), reason: error }, 'snapshot install failed');
    if (this.state === InboundState.Closing || this.socket.destroyed) return;
    this.state = InboundState.Closing;
    this.inbox?.return();
    const text = Buffer.from(error ?? '', 'utf8').subarray(0, 1024);
    const body = Buffer.allocUnsafe(1 + text.length);
    body[0] = error === undefined ? 1 : 0;
    text.copy(body, 1);
    this.socket.resume();
    this.socket.setTimeout(REFUSED_LINGER_MS, () => this.socket.destroy());
    this.socket.end(encodeFrame(FrameType.SnapshotResult, body));
  }

  private onClose(): void {
    const wasMessages = this.state === InboundState.Messages;
    this.state = InboundState.Closing;
    if (this.inbox !== undefined && !this.snapshotEnded && !this.snapshotSettled) {
      this.inbox.fail(new Error(`snapshot stream from member ${idHex(this.from)} broke before its end: ${this.closeReason ?? 'connection closed'}`));
    }
    if (wasMessages && this.closeReason !== undefined) {
      this.ctx.log.info({ peer_id: idHex(this.from), remote: this.remote, reason: this.closeReason }, 'inbound peer stream closed');
    }
    this.registry.closed(this);
  }
}
