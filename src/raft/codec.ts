// Binary encoding of the raft types, for the peer transport and the WAL.
//
// Format version 1. All integers are big-endian.
//   u64n  = a term or index: uint64 written as two uint32 (high, low); decoding
//           asserts the value is a safe integer.
//   id    = a NodeId: uint64 (full range).
//   bytes = u32 length, then that many bytes.
//
//   Entry       = u8 type, u64n term, u64n index, bytes data
//   HardState   = u8 version(1), u64n term, id vote, u64n commit
//   ConfChange  = u8 version(1), u8 type, id nodeId, bytes context
//   ConfState   = u32 nVoters, id*, u32 nLearners, id*
//   Snapshot    = u64n index, u64n term, ConfState, bytes data
//   Message     = u8 version(1), u8 type, id from, id to, u64n term, u64n logTerm,
//                 u64n index, u64n commit, u64n rejectHint,
//                 u8 flags (bit 0: reject, bit 1: snapshot follows),
//                 bytes context, u32 nEntries, Entry*, [Snapshot]
//
// A decoder rejects an unknown version, an unknown enum value and trailing bytes.

import { assert } from './assert';
import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type NodeId,
  type Snapshot,
  messageTypeCount,
} from './types';

export const codecVersion = 1;

const hi32 = 0x100000000;

class Writer {
  readonly buf: Uint8Array;
  private readonly view: DataView;
  private pos = 0;

  constructor(size: number) {
    // Every byte is written (done() checks), so the memory need not be zeroed first
    // (node's pool for small sizes); seen as a plain Uint8Array.
    const mem = Buffer.allocUnsafe(size);
    this.buf = new Uint8Array(mem.buffer, mem.byteOffset, size);
    this.view = new DataView(mem.buffer, mem.byteOffset, size);
  }
  u8(v: number): void {
    this.view.setUint8(this.pos, v);
    this.pos += 1;
  }
  u32(v: number): void {
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }
  num(v: number): void {
    assert(Number.isSafeInteger(v) && v >= 0, () => `cannot encode ${v} as uint64`);
    this.view.setUint32(this.pos, Math.floor(v / hi32));
    this.view.setUint32(this.pos + 4, v >>> 0);
    this.pos += 8;
  }
  id(v: NodeId): void {
    this.view.setBigUint64(this.pos, v);
    this.pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.u32(b.byteLength);
    this.buf.set(b, this.pos);
    this.pos += b.byteLength;
  }
  done(): Uint8Array {
    assert(this.pos === this.buf.byteLength, 'encoder size mismatch');
    return this.buf;
  }
}

export class DecodeError extends Error {
  constructor(message: string) {
    super(`raft codec: ${message}`);
    this.name = 'DecodeError';
  }
}

class Reader {
  private readonly view: DataView;
  private pos = 0;

  /** With `owned`, `buf` is the decoder's own copy and byte fields are views into it. */
  constructor(
    private readonly buf: Uint8Array,
    private readonly owned = false,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.byteLength) throw new DecodeError('truncated input');
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }
  num(): number {
    this.need(8);
    const v = this.view.getUint32(this.pos) * hi32 + this.view.getUint32(this.pos + 4);
    this.pos += 8;
    if (!Number.isSafeInteger(v)) throw new DecodeError(`integer ${v} is not safe`);
    return v;
  }
  id(): NodeId {
    this.need(8);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }
  bytes(): Uint8Array {
    const n = this.u32();
    this.need(n);
    // Copy, so that decoded values do not pin (or alias) the input buffer; unless the
    // buffer is already a private copy (one allocation for all the fields of a message).
    const b = this.owned ? this.buf.subarray(this.pos, this.pos + n) : this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  end(): void {
    if (this.pos !== this.buf.byteLength) throw new DecodeError('trailing bytes');
  }
  version(): void {
    const v = this.u8();
    if (v !== codecVersion) throw new DecodeError(`unknown version ${v}`);
  }
}

const entryFixedSize = 1 + 8 + 8 + 4;

function entrySizeEncoded(e: Entry): number {
  return entryFixedSize + e.data.byteLength;
}
function writeEntry(w: Writer, e: Entry): void {
  w.u8(e.type);
  w.num(e.term);
  w.num(e.index);
  w.bytes(e.data);
}
function readEntry(r: Reader): Entry {
  const type = r.u8();
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) throw new DecodeError(`unknown entry type ${type}`);
  const term = r.num();
  const index = r.num();
  return { type, term, index, data: r.bytes() };
}

export function encodeEntry(e: Entry): Uint8Array {
  const w = new Writer(entrySizeEncoded(e));
  writeEntry(w, e);
  return w.done();
}
export function decodeEntry(b: Uint8Array): Entry {
  const r = new Reader(b);
  const e = readEntry(r);
  r.end();
  return e;
}

export function encodeHardState(hs: HardState): Uint8Array {
  const w = new Writer(1 + 24);
  w.u8(codecVersion);
  w.num(hs.term);
  w.id(hs.vote);
  w.num(hs.commit);
  return w.done();
}
export function decodeHardState(b: Uint8Array): HardState {
  const r = new Reader(b);
  r.version();
  const hs = { term: r.num(), vote: r.id(), commit: r.num() };
  r.end();
  return hs;
}

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const w = new Writer(1 + 1 + 8 + 4 + cc.context.byteLength);
  w.u8(codecVersion);
  w.u8(cc.type);
  w.id(cc.nodeId);
  w.bytes(cc.context);
  return w.done();
}
export function decodeConfChange(b: Uint8Array): ConfChange {
  const r = new Reader(b);
  r.version();
  const type = r.u8();
  if (!(type in ConfChangeType)) throw new DecodeError(`unknown conf change type ${type}`);
  const cc = { type: type as ConfChangeType, nodeId: r.id(), context: r.bytes() };
  r.end();
  return cc;
}

function confStateSize(cs: ConfState): number {
  return 8 + 8 * (cs.voters.length + cs.learners.length);
}
function writeConfState(w: Writer, cs: ConfState): void {
  w.u32(cs.voters.length);
  for (const id of cs.voters) w.id(id);
  w.u32(cs.learners.length);
  for (const id of cs.learners) w.id(id);
}
function readIds(r: Reader): NodeId[] {
  const n = r.u32();
  const ids: NodeId[] = [];
  for (let i = 0; i < n; i++) ids.push(r.id());
  return ids;
}
function readConfState(r: Reader): ConfState {
  const voters = readIds(r);
  return { voters, learners: readIds(r) };
}

function snapshotSize(s: Snapshot): number {
  return 16 + confStateSize(s.metadata.confState) + 4 + s.data.byteLength;
}
function writeSnapshot(w: Writer, s: Snapshot): void {
  w.num(s.metadata.index);
  w.num(s.metadata.term);
  writeConfState(w, s.metadata.confState);
  w.bytes(s.data);
}
function readSnapshot(r: Reader): Snapshot {
  const index = r.num();
  const term = r.num();
  const confState = readConfState(r);
  return { metadata: { index, term, confState }, data: r.bytes() };
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  const w = new Writer(1 + snapshotSize(s));
  w.u8(codecVersion);
  writeSnapshot(w, s);
  return w.done();
}
export function decodeSnapshot(b: Uint8Array): Snapshot {
  const r = new Reader(b);
  r.version();
  const s = readSnapshot(r);
  r.end();
  return s;
}

const messageFixedSize = 1 + 1 + 8 * 7 + 1 + 4 + 4;

export function encodeMessage(m: Message): Uint8Array {
  let size = messageFixedSize + m.context.byteLength;
  for (const e of m.entries) size += entrySizeEncoded(e);
  if (m.snapshot) size += snapshotSize(m.snapshot);
  const w = new Writer(size);
  w.u8(codecVersion);
  w.u8(m.type);
  w.id(m.from);
  w.id(m.to);
  w.num(m.term);
  w.num(m.logTerm);
  w.num(m.index);
  w.num(m.commit);
  w.num(m.rejectHint);
  w.u8((m.reject ? 1 : 0) | (m.snapshot ? 2 : 0));
  w.bytes(m.context);
  w.u32(m.entries.length);
  for (const e of m.entries) writeEntry(w, e);
  if (m.snapshot) writeSnapshot(w, m.snapshot);
  return w.done();
}

export function decodeMessage(b: Uint8Array): Message {
  // One copy of the whole message instead of one per entry: its entries live and die
  // together (in the log until compaction), and the input (a peer frame) is not pinned.
  const r = new Reader(new Uint8Array(b), true);
  r.version();
  const type = r.u8();
  if (type >= messageTypeCount) throw new DecodeError(`unknown message type ${type}`);
  const from = r.id();
  const to = r.id();
  const term = r.num();
  const logTerm = r.num();
  const index = r.num();
  const commit = r.num();
  const rejectHint = r.num();
  const flags = r.u8();
  if (flags > 3) throw new DecodeError(`unknown message flags ${flags}`);
  const context = r.bytes();
  const n = r.u32();
  const entries: Entry[] = [];
  for (let i = 0; i < n; i++) entries.push(readEntry(r));
  const snapshot = flags & 2 ? readSnapshot(r) : null;
  r.end();
  return {
    type: type as MessageType,
    from,
    to,
    term,
    logTerm,
    index,
    commit,
    rejectHint,
    reject: (flags & 1) !== 0,
    context,
    entries,
    snapshot,
  };
}
