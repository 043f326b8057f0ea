import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

// etcdctl dials a single endpoint (endpoint status/hashkv, defrag, move-leader, and every
// --cluster command) as "passthrough:///http://host:port", and grpc-go then sends that
// whole string, scheme included, as the HTTP/2 :authority. etcd's Go server accepts it;
// node's HTTP/2 (nghttp2) refuses an authority containing '/' and resets the stream.
//
// So the client port looks at a connection's first request before node sees it. To get
// one, it answers the client preface with an empty SETTINGS frame itself (gRPC clients send
// nothing until they hear the server's), removes the client's ACK of it, and waits for the
// first HEADERS. If its :authority is valid, the untouched bytes go to node's HTTP/2 on the
// native socket (no cost afterwards). If not, the connection runs through a rewriter that
// re-encodes every request header block with the authority reduced to host:port.
//
// HPACK decoding uses hpack.js (Huffman, dynamic table); the re-encoded blocks use only
// literals without indexing, so the server's decoder needs no shared table state.

// eslint-disable-next-line @typescript-eslint/no-var-requires
const hpack = require('hpack.js') as {
  decompressor: { create(o: { table: { size: number } }): Decompressor };
};

interface Decompressor {
  write(b: Buffer): void;
  execute(): void;
  read(): { name: string; value: string } | null;
}

export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER_BYTES = 9;
const TYPE_HEADERS = 0x1;
const TYPE_SETTINGS = 0x4;
const TYPE_CONTINUATION = 0x9;
const FLAG_ACK = 0x1;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
/** The HTTP/2 default SETTINGS_MAX_FRAME_SIZE: re-encoded blocks are split to fit it. */
const FRAME_PAYLOAD_MAX_BYTES = 16_384;
/** How long a connection may wait, after the SETTINGS exchange, for its first request. */
export const FIRST_REQUEST_WAIT_MS = 250;
/** Bytes held while waiting for the first request; past this the connection goes native. */
const SNIFF_BYTES_MAX = 256 * 1024;
const HEADER_TABLE_BYTES = 4096;
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, TYPE_SETTINGS, 0, 0, 0, 0, 0]);

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
  raw: Buffer;
}

/** Splits complete frames off the front of `buf`; returns them and the rest. */
function parseFrames(buf: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let off = 0;
  while (buf.length - off >= FRAME_HEADER_BYTES) {
    const len = buf.readUIntBE(off, 3);
    if (buf.length - off < FRAME_HEADER_BYTES + len) break;
    const raw = buf.subarray(off, off + FRAME_HEADER_BYTES + len);
    frames.push({ type: raw[3], flags: raw[4], stream: raw.readUInt32BE(5) & 0x7fffffff, payload: raw.subarray(FRAME_HEADER_BYTES), raw });
    off += FRAME_HEADER_BYTES + len;
  }
  return { frames, rest: buf.subarray(off) };
}

/** The header block fragment of a HEADERS frame, without padding and priority fields. */
function headerFragment(f: Frame): { fragment: Buffer; priority: Buffer | undefined } {
  let p = f.payload;
  let pad = 0;
  if (f.type === TYPE_HEADERS && f.flags & FLAG_PADDED) {
    pad = p[0];
    p = p.subarray(1);
  }
  let priority: Buffer | undefined;
  if (f.type === TYPE_HEADERS && f.flags & FLAG_PRIORITY) {
    priority = p.subarray(0, 5);
    p = p.subarray(5);
  }
  return { fragment: p.subarray(0, p.length - pad), priority };
}

function decodeBlock(d: Decompressor, block: Buffer): Array<{ name: string; value: string }> {
  d.write(block);
  d.execute();
  const out: Array<{ name: string; value: string }> = [];
  for (let h = d.read(); h !== null; h = d.read()) out.push(h);
  return out;
}

export function badAuthority(v: string): boolean {
  return v.includes('/');
}

/** "http://127.0.0.1:2379" -> "127.0.0.1:2379" (the part etcd's clients meant). */
export function fixAuthority(v: string): string {
  return v.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/\/.*$/, '');
}

function hpackInt(value: number, prefixBits: number, firstByte: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [firstByte | value];
  const out = [firstByte | max];
  value -= max;
  while (value >= 128) {
    out.push((value % 128) + 128);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

/** A header block of literals without indexing (new names, no Huffman). */
function encodeLiterals(headers: Array<{ name: string; value: string }>): Buffer {
  const parts: Buffer[] = [];
  for (const h of headers) {
    const name = Buffer.from(h.name, 'latin1');
    const value = Buffer.from(h.value, 'latin1');
    parts.push(Buffer.from([0x00, ...hpackInt(name.length, 7, 0)]), name, Buffer.from(hpackInt(value.length, 7, 0)), value);
  }
  return Buffer.concat(parts);
}

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** Rewrites the client->server byte stream (after the preface): header blocks re-encoded, other frames untouched. */
class Rewriter {
  /** `added`: a header put on every request (any copy the client sent is dropped). */
  constructor(private readonly enabled: boolean, private readonly added?: { name: string; value: string }) {}

  private rest: Buffer = Buffer.alloc(0);
  private readonly decoder = hpack.decompressor.create({ table: { size: HEADER_TABLE_BYTES } });
  private pending: { first: Frame; priority: Buffer | undefined; fragments: Buffer[] } | undefined;

  push(chunk: Buffer): Buffer[] {
    if (!this.enabled) return [chunk];
    const { frames, rest } = parseFrames(this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk);
    this.rest = Buffer.from(rest);
    const out: Buffer[] = [];
    for (const f of frames) {
      if (f.type === TYPE_HEADERS) {
        const { fragment, priority } = headerFragment(f);
        this.pending = { first: f, priority, fragments: [fragment] };
      } else if (f.type === TYPE_CONTINUATION && this.pending) {
        this.pending.fragments.push(f.payload);
      } else {
        out.push(f.raw);
        continue;
      }
      if (!(f.flags & FLAG_END_HEADERS)) continue;
      const p = this.pending!;
      this.pending = undefined;
      const headers = decodeBlock(this.decoder, Buffer.concat(p.fragments))
        .filter((h) => h.name !== this.added?.name)
        .map((h) => (h.name === ':authority' && badAuthority(h.value) ? { name: h.name, value: fixAuthority(h.value) } : h));
      if (this.added) headers.push(this.added);
      let block = encodeLiterals(headers);
      const firstFlags = (p.first.flags & FLAG_END_STREAM) | (p.priority ? FLAG_PRIORITY : 0);
      let payload = p.priority ? Buffer.concat([p.priority, block]) : block;
      const room = FRAME_PAYLOAD_MAX_BYTES;
      const head = payload.subarray(0, room);
      block = payload.subarray(room);
      out.push(frame(TYPE_HEADERS, firstFlags | (block.length === 0 ? FLAG_END_HEADERS : 0), p.first.stream, head));
      while (block.length > 0) {
        payload = block.subarray(0, room);
        block = block.subarray(room);
        out.push(frame(TYPE_CONTINUATION, block.length === 0 ? FLAG_END_HEADERS : 0, p.first.stream, payload));
      }
    }
    return out;
  }
}

/**
 * Takes over a socket whose first bytes were the HTTP/2 preface; calls `deliver` with
 * either the socket itself (bytes unshifted) or a rewriting Duplex, for node's HTTP/2.
 */
export function sniffHttp2(
  socket: Socket,
  seen: Buffer,
  deliver: (conn: Socket | Duplex) => void,
  alwaysProxy = false,
  added?: { name: string; value: string },
): void {
  let buf: Buffer = seen.subarray(HTTP2_PREFACE.length);
  const kept: Buffer[] = [];
  let ackSeen = false;
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  socket.write(EMPTY_SETTINGS);

  const finish = (rewrite: boolean): void => {
    if (done) return;
    done = true;
    if (timer) clearTimeout(timer);
    clearTimeout(fallback);
    socket.removeListener('data', onData);
    socket.pause();
    const held = Buffer.concat([...kept, buf]);
    // A TLS socket cannot take unshifted bytes into node's HTTP/2 (it reads its native
    // handle before them): such connections always go through the stream below.
    if (!rewrite && !alwaysProxy) {
      socket.unshift(Buffer.concat([HTTP2_PREFACE, held]));
      deliver(socket);
      return;
    }
    const rewriter = new Rewriter(rewrite || added !== undefined, added);
    const proxy = new Duplex({
      read() {
        socket.resume();
      },
      write(chunk: Buffer, _enc, cb) {
        socket.write(chunk, cb);
      },
      final(cb) {
        socket.end();
        cb();
      },
      destroy(err, cb) {
        socket.destroy(err ?? undefined);
        cb(err);
      },
    });
    const feed = (chunk: Buffer): void => {
      try {
        for (const out of rewriter.push(chunk)) if (!proxy.push(out)) socket.pause();
      } catch (e) {
        proxy.destroy(e instanceof Error ? e : new Error(String(e)));
      }
    };
    socket.on('data', feed);
    socket.on('end', () => proxy.push(null));
    socket.on('close', () => proxy.destroy());
    proxy.push(HTTP2_PREFACE);
    feed(held);
    deliver(proxy);
  };

  let firstRequest: boolean | undefined; // set once the first request's headers were read: whether to rewrite

  const onData = (chunk: Buffer): void => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    const { frames, rest } = parseFrames(buf);
    buf = Buffer.from(rest);
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i];
      if (!ackSeen && f.type === TYPE_SETTINGS && f.flags & FLAG_ACK) {
        ackSeen = true; // the ACK of our own SETTINGS: node never sent it, so node must not see it
        continue;
      }
      kept.push(f.raw);
      if (firstRequest === undefined && (f.type === TYPE_HEADERS || f.type === TYPE_CONTINUATION)) {
        if (!(f.flags & FLAG_END_HEADERS)) continue;
        const block = Buffer.concat(
          kept.map((raw) => parseFrames(raw).frames[0]).filter((k) => k.type === TYPE_HEADERS || k.type === TYPE_CONTINUATION).map((k) => (k.type === TYPE_HEADERS ? headerFragment(k).fragment : k.payload)),
        );
        try {
          const headers = decodeBlock(hpack.decompressor.create({ table: { size: HEADER_TABLE_BYTES } }), block);
          firstRequest = headers.some((h) => h.name === ':authority' && badAuthority(h.value));
        } catch {
          firstRequest = false; // let node's HTTP/2 report whatever is wrong with it
        }
      }
    }
    // Hand over only once the client has acknowledged our SETTINGS: an ACK reaching node
    // later would acknowledge settings node never sent.
    if (ackSeen && firstRequest !== undefined) {
      finish(firstRequest);
      return;
    }
    if (ackSeen && timer === undefined) timer = setTimeout(() => finish(false), FIRST_REQUEST_WAIT_MS);
    if (kept.reduce((n, b) => n + b.length, 0) + buf.length > SNIFF_BYTES_MAX) finish(false);
  };
  // A client that never answers our SETTINGS still gets node's HTTP/2, just without the check.
  const fallback = setTimeout(() => finish(false), FIRST_REQUEST_WAIT_MS * 4);
  fallback.unref();
  socket.once('close', () => clearTimeout(fallback));
  socket.on('data', onData);
  if (buf.length > 0) {
    const first = buf;
    buf = Buffer.alloc(0);
    onData(first);
  }
}
