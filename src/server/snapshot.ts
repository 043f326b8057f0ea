import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { Backend } from '../mvcc/backend';

// A snapshot of a member's whole backend, streamed (Maintenance.Snapshot), format version 1:
//
//   "CAIRNSNAP" | u32be version (1)
//   repeated: u32be key length | key | u32be value length | value     (every LevelDB entry, in key order)
//   u32be 0xffffffff                                                    (end of entries)
//   zero bytes up to a multiple of 512                                  (etcdctl checks size % 512 == 32)
//   sha256 of every byte before it                                      (32 bytes, as etcd's stream ends)
//
// It is consistent: LevelDB's iterator reads one point in time, taken after everything
// applied so far has been written.

export const SNAPSHOT_MAGIC = Buffer.from('CAIRNSNAP', 'latin1');
export const SNAPSHOT_FORMAT_VERSION = 1;
const END_OF_ENTRIES = 0xffffffff;
const CHUNK_BYTES = 64 * 1024;
/** etcd's snapshot is a bbolt file (whole pages) plus the hash; etcdctl relies on that shape. */
const SNAPSHOT_ALIGN_BYTES = 512;

export async function* snapshotChunks(backend: Backend): AsyncGenerator<Buffer> {
  await backend.commit();
  const sha = createHash('sha256');
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let total = 0;
  const take = (): Buffer => {
    const out = Buffer.concat(pending);
    total += out.length;
    sha.update(out);
    pending = [];
    pendingBytes = 0;
    return out;
  };
  const push = (b: Buffer): void => {
    pending.push(b);
    pendingBytes += b.length;
  };
  const head = Buffer.alloc(SNAPSHOT_MAGIC.length + 4);
  SNAPSHOT_MAGIC.copy(head);
  head.writeUInt32BE(SNAPSHOT_FORMAT_VERSION, SNAPSHOT_MAGIC.length);
  push(head);
  const it = backend.db.iterator();
  try {
    for (;;) {
      const chunk = await it.nextv(1000);
      if (chunk.length === 0) break;
      for (const [k, v] of chunk) {
        const len = Buffer.alloc(4);
        len.writeUInt32BE(k.length);
        push(len);
        push(k);
        const vlen = Buffer.alloc(4);
        vlen.writeUInt32BE(v.length);
        push(vlen);
        push(v);
      }
      if (pendingBytes >= CHUNK_BYTES) yield take();
    }
  } finally {
    await it.close();
  }
  const end = Buffer.alloc(4);
  end.writeUInt32BE(END_OF_ENTRIES);
  push(end);
  const soFar = total + pendingBytes;
  if (soFar % SNAPSHOT_ALIGN_BYTES !== 0) push(Buffer.alloc(SNAPSHOT_ALIGN_BYTES - (soFar % SNAPSHOT_ALIGN_BYTES)));
  const last = take();
  yield Buffer.concat([last, sha.digest()]);
}

/**
 * Receives a snapshot stream into `file`, checking its format and its sha256 trailer as
 * it goes; throws (leaving nothing installed) when either is wrong.
 */
export async function receiveSnapshotFile(data: AsyncIterable<Buffer>, file: string): Promise<void> {
  const out = await open(file, 'w');
  const sha = createHash('sha256');
  // The last 32 bytes are the trailer: hold them back from the hash until the end.
  let tail = Buffer.alloc(0);
  try {
    for await (const chunk of data) {
      const all = tail.length ? Buffer.concat([tail, chunk]) : chunk;
      const body = all.subarray(0, Math.max(0, all.length - 32));
      tail = Buffer.from(all.subarray(body.length));
      sha.update(body);
      if (body.length > 0) await out.write(body);
    }
    if (tail.length !== 32 || !sha.digest().equals(tail)) throw new Error('snapshot stream: sha256 mismatch (truncated or corrupt)');
    await out.sync();
  } finally {
    await out.close();
  }
}

/** Reads the entries of a received snapshot file (its trailer already checked) in batches. */
export async function loadSnapshotFile(file: string, onBatch: (entries: Array<[Buffer, Buffer]>) => Promise<void>): Promise<void> {
  const bytes = await readFile(file);
  if (!bytes.subarray(0, SNAPSHOT_MAGIC.length).equals(SNAPSHOT_MAGIC)) throw new Error('snapshot: not a cairn snapshot (bad magic)');
  const version = bytes.readUInt32BE(SNAPSHOT_MAGIC.length);
  if (version !== SNAPSHOT_FORMAT_VERSION) throw new Error(`snapshot: unsupported format version ${version}`);
  let off = SNAPSHOT_MAGIC.length + 4;
  let batch: Array<[Buffer, Buffer]> = [];
  for (;;) {
    if (off + 4 > bytes.length) throw new Error('snapshot: truncated before its end marker');
    const klen = bytes.readUInt32BE(off);
    off += 4;
    if (klen === END_OF_ENTRIES) break;
    const key = bytes.subarray(off, off + klen);
    off += klen;
    const vlen = bytes.readUInt32BE(off);
    off += 4;
    const value = bytes.subarray(off, off + vlen);
    off += vlen;
    if (off > bytes.length) throw new Error('snapshot: entry runs past the end');
    batch.push([key, value]);
    if (batch.length >= 10_000) {
      await onBatch(batch);
      batch = [];
    }
  }
  if (batch.length > 0) await onBatch(batch);
}
