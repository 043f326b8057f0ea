import { createHash } from 'node:crypto';
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
