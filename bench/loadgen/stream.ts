/**
 * A minimal bidirectional-streaming gRPC client on node:http2, for the streaming
 * workloads (watch fan-out, lease keep-alive). One HTTP/2 stream per gRPC call, fixed
 * request headers (content-type application/grpc, te: trailers), messages written with
 * the 5-byte gRPC prefix, response messages cut out of the DATA chunks as they arrive
 * and handed over as subarrays (no copy unless a message spans chunks). No flow-control
 * tricks, no compression, no deadlines: the point is that a thousand open streams cost
 * the load generator as little as possible.
 */
import * as http2 from 'node:http2';

const FRAME_PREFIX_BYTES = 5;

/** A length-prefixed gRPC message (uncompressed). */
export function frame(message: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + message.length);
  b[0] = 0;
  b.writeUInt32BE(message.length, 1);
  b.set(message, FRAME_PREFIX_BYTES);
  return b;
}

export interface StreamSink {
  /** One response message (without the prefix); valid only during the call. */
  onMessage(msg: Buffer): void;
  /** The call ended: status '0' is OK, else a gRPC status code, 'STREAM_ERROR', 'NO_STATUS' or 'BAD_FRAME'. */
  onEnd(status: string, detail: string): void;
}

export class H2Session {
  readonly session: http2.ClientHttp2Session;
  error: Error | null = null;

  constructor(target: string) {
    // Streams are long-lived; raise the local window so 1000 streams are not throttled by defaults.
    this.session = http2.connect(`http://${target}`, {
      settings: { enablePush: false, initialWindowSize: 1 << 20 },
      peerMaxConcurrentStreams: 100_000,
    });
    this.session.on('error', (e: Error) => {
      this.error = e;
    });
  }

  ready(timeoutMs: number): Promise<void> {
    const s = this.session;
    if (s.connecting === false && !s.destroyed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`http2 connect timed out after ${timeoutMs} ms`)), timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        try {
          s.setLocalWindowSize(1 << 24);
        } catch {
          // older runtimes: keep the default connection window
        }
        resolve();
      });
      s.once('error', (e: Error) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  /** Open a bidi call; write with `send`, end with `end` (half-close) or `cancel`. */
  open(method: string, sink: StreamSink): BidiCall {
    return new BidiCall(this, method, sink);
  }

  close(): void {
    this.session.destroy();
  }
}

export class BidiCall {
  private readonly stream: http2.ClientHttp2Stream;
  private pending: Buffer | null = null;
  private status: string | null = null;
  private message = '';
  private streamError = '';
  private ended = false;

  constructor(
    owner: H2Session,
    method: string,
    private readonly sink: StreamSink,
  ) {
    this.stream = owner.session.request(
      { ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers' },
      { endStream: false },
    );
    const onHeaders = (h: http2.IncomingHttpHeaders): void => {
      const s = h['grpc-status'];
      if (typeof s === 'string') {
        this.status = s;
        const m = h['grpc-message'];
        this.message = typeof m === 'string' ? m : '';
      }
    };
    this.stream.on('response', onHeaders);
    this.stream.on('trailers', onHeaders);
    this.stream.on('data', (b: Buffer) => this.onData(b));
    this.stream.on('error', (e: Error) => {
      this.streamError = e.message;
    });
    this.stream.on('close', () => this.finish());
  }

  get open(): boolean {
    return !this.ended;
  }

  send(framed: Buffer): void {
    if (!this.ended && this.stream.writable) this.stream.write(framed);
  }

  /** Half-close: no more requests; the server ends the call. */
  end(): void {
    if (this.stream.writable) this.stream.end();
  }

  /** Reset the stream (RST_STREAM CANCEL); onEnd follows with the local status. */
  cancel(): void {
    if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  private onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending !== null) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    let off = 0;
    while (buf.length - off >= FRAME_PREFIX_BYTES) {
      if (buf[off] !== 0) {
        this.streamError = `compressed or malformed gRPC frame (flag ${buf[off]})`;
        this.cancel();
        return;
      }
      const len = buf.readUInt32BE(off + 1);
      const end = off + FRAME_PREFIX_BYTES + len;
      if (end > buf.length) break;
      this.sink.onMessage(buf.subarray(off + FRAME_PREFIX_BYTES, end));
      off = end;
    }
    if (off < buf.length) this.pending = Buffer.from(buf.subarray(off)); // copy: the chunk may be reused
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.streamError !== '') this.sink.onEnd('STREAM_ERROR', this.streamError);
    else if (this.pending !== null) this.sink.onEnd('BAD_FRAME', `stream ended inside a message (${this.pending.length} bytes pending)`);
    else if (this.status === null) this.sink.onEnd('NO_STATUS', `stream closed without grpc-status (rst code ${this.stream.rstCode ?? '?'})`);
    else this.sink.onEnd(this.status, this.message);
  }
}
