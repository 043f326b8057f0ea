import type { Socket } from 'node:net';
import { errorMessage, socketClosed, watchClose, type TransportContext } from './context';
import { encodeFrame, FrameDecoder, frameHeader, FrameType, HANDSHAKE_FRAME_BYTES_MAX, ProtocolError } from './frame';
import { decodeHelloAck, encodeHello, HelloStatus, idHex, PEER_PROTOCOL_VERSION, StreamKind } from './handshake';
import { SNAPSHOT_INBOX_BYTES_MAX, TCP_KEEPALIVE_MS } from './options';
import type { Endpoint } from './url';

/**
 * The receiving end of one snapshot's data, handed to onSnapshot as an AsyncIterable.
 * Holds at most SNAPSHOT_INBOX_BYTES_MAX (plus one socket read): past that the connection
 * is paused, and it resumes once the handler has taken half of it.
 */
export class SnapshotInbox implements AsyncIterableIterator<Buffer> {
  private chunks: Buffer[] = [];
  bufferedBytes = 0;
  private ended = false;
  private abandoned = false;
  private error: Error | undefined;
  private waiter: { resolve: (r: IteratorResult<Buffer>) => void; reject: (e: Error) => void } | undefined;

  constructor(private readonly onRoom: () => void) {}

  get full(): boolean {
    return this.bufferedBytes >= SNAPSHOT_INBOX_BYTES_MAX;
  }

  push(chunk: Buffer): void {
    if (this.abandoned || this.ended || this.error !== undefined) return;
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      waiter.resolve({ value: chunk, done: false });
      return;
    }
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
  }

  end(): void {
    this.ended = true;
    this.settleWaiter();
  }

  fail(err: Error): void {
    if (this.ended) return;
    this.error ??= err;
    this.settleWaiter();
  }

  next(): Promise<IteratorResult<Buffer>> {
    const chunk = this.chunks.shift();
    if (chunk !== undefined) {
      const hadNoRoom = this.full;
      this.bufferedBytes -= chunk.length;
      if (hadNoRoom || this.bufferedBytes <= SNAPSHOT_INBOX_BYTES_MAX / 2) this.onRoom();
      return Promise.resolve({ value: chunk, done: false });
    }
    if (this.error !== undefined) return Promise.reject(this.error);
    if (this.ended || this.abandoned) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** The handler stopped reading: drop what is buffered and what still arrives. */
  return(): Promise<IteratorResult<Buffer>> {
    this.abandoned = true;
    this.chunks = [];
    this.bufferedBytes = 0;
    this.onRoom();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Buffer> {
    return this;
  }

  private settleWaiter(): void {
    const waiter = this.waiter;
    if (waiter === undefined) return;
    this.waiter = undefined;
    if (this.error !== undefined) waiter.reject(this.error);
    else waiter.resolve({ value: undefined, done: true });
  }
}

/**
 * The sending end of one snapshot stream: its own connection, handshake, then BEGIN,
 * CHUNKs written with backpressure, END, and the receiver's RESULT.
 */
export class SnapshotSender {
  private decoder = new FrameDecoder(HANDSHAKE_FRAME_BYTES_MAX);
  private handshaken = false;
  /** Undefined until the receiver answered or the connection ended. */
  private outcome: { error?: Error } | undefined;
  private closeReason: string | undefined;
  private wake: (() => void) | undefined;
  private readonly accepted: Promise<void>;
  private acceptedSettle!: { resolve: () => void; reject: (e: Error) => void };
  private readonly finished: Promise<void>;
  private finishedResolve!: () => void;

  constructor(
    private readonly ctx: TransportContext,
    readonly to: bigint,
    readonly endpoint: Endpoint,
    readonly socket: Socket,
    connected: Promise<void>,
  ) {
    this.accepted = new Promise((resolve, reject) => (this.acceptedSettle = { resolve, reject }));
    this.accepted.catch(() => undefined);
    this.finished = new Promise((resolve) => (this.finishedResolve = resolve));
    watchClose(socket);
    socket.on('error', (err) => (this.closeReason ??= err.message));
    socket.on('close', () => this.onClose());
    socket.on('drain', () => this.wakeWriter());
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    connected.then(
      () => this.onConnected(),
      () => undefined, // the 'close' listener reports it
    );
  }

  /** Resolves when the receiver accepted the stream; rejects with why not. */
  handshake(): Promise<void> {
    return this.accepted;
  }

  /** Streams the snapshot; resolves when the receiver installed it. */
  async send(metadata: Uint8Array, data: AsyncIterable<Uint8Array>, chunkBytes: number): Promise<void> {
    const socket = this.socket;
    socket.write(encodeFrame(FrameType.SnapshotBegin, metadata));
    const it = data[Symbol.asyncIterator]();
    let done = false;
    try {
      while (this.outcome === undefined) {
        const pending = it.next();
        pending.catch(() => undefined); // if the receiver answers first, a late failure is moot
        const step = await Promise.race([pending, this.finished]);
        if (step === undefined || this.outcome !== undefined) break;
        if (step.done === true) {
          done = true;
          break;
        }
        const chunk = step.value;
        for (let offset = 0; offset < chunk.length && this.outcome === undefined; offset += chunkBytes) {
          const piece = chunk.subarray(offset, offset + chunkBytes);
          socket.write(frameHeader(FrameType.SnapshotChunk, piece));
          if (!socket.write(piece)) await this.writable();
        }
      }
    } finally {
      if (!done) it.return?.()?.catch(() => undefined);
    }
    if (this.outcome === undefined) socket.write(encodeFrame(FrameType.SnapshotEnd, Buffer.alloc(0)));
    await this.finished;
    const error = this.outcome?.error;
    if (error !== undefined) throw error;
  }

  close(reason?: string): Promise<void> {
    if (reason !== undefined) this.closeReason ??= reason;
    this.socket.destroy();
    return socketClosed(this.socket);
  }

  private writable(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  private wakeWriter(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private onConnected(): void {
    this.socket.setNoDelay(true);
    this.socket.setKeepAlive(true, TCP_KEEPALIVE_MS);
    this.socket.setTimeout(this.ctx.limits.handshakeTimeoutMs, () => {
      this.closeReason ??= `no handshake answer within ${this.ctx.limits.handshakeTimeoutMs} ms`;
      this.socket.destroy();
    });
    this.socket.write(
      encodeHello({
        version: PEER_PROTOCOL_VERSION,
        kind: StreamKind.Snapshot,
        clusterId: this.ctx.clusterId,
        fromId: this.ctx.memberId,
        toId: this.to,
      }),
    );
  }

  private onData(chunk: Buffer): void {
    this.decoder.push(chunk);
    try {
      for (let frame = this.decoder.next(); frame !== null; frame = this.decoder.next()) {
        if (!this.handshaken) {
          if (frame.type !== FrameType.HelloAck) throw new ProtocolError(`expected a handshake answer, got frame type ${frame.type}`);
          const ack = decodeHelloAck(frame.body);
          if (ack.status !== HelloStatus.Ok) {
            this.closeReason = `refused by the peer: ${ack.reason}`;
            this.socket.destroy();
            return;
          }
          this.handshaken = true;
          this.socket.setTimeout(0);
          this.acceptedSettle.resolve();
          continue;
        }
        if (frame.type !== FrameType.SnapshotResult || frame.body.length < 1) {
          throw new ProtocolError(`unexpected frame type ${frame.type} on a snapshot stream`);
        }
        const ok = frame.body[0] === 1;
        this.settle(ok ? {} : { error: new Error(`member ${idHex(this.to)} failed to install the snapshot: ${frame.body.subarray(1).toString('utf8')}`) });
        this.socket.end();
      }
    } catch (err) {
      this.closeReason ??= `protocol error: ${errorMessage(err)}`;
      this.socket.destroy();
    }
  }

  private onClose(): void {
    const reason = this.closeReason ?? 'connection closed';
    this.acceptedSettle.reject(new Error(`${this.endpoint.url}: ${reason}`));
    this.settle({ error: new Error(`snapshot stream to member ${idHex(this.to)} ended before its result: ${reason}`) });
  }

  private settle(outcome: { error?: Error }): void {
    if (this.outcome !== undefined) return;
    this.outcome = outcome;
    this.finishedResolve();
    this.wakeWriter();
  }
}
