// The bytes of every live key's current record, packed into slabs. A Buffer of its own per
// record costs two objects on the V8 heap (the Buffer and its ArrayBuffer, about 184 bytes
// beside a 300-byte record) plus a malloc'd backing store: at a million keys, two million
// objects for every major GC to trace, and under a put load one more of each promoted per
// put. Here a record is a place in a slab: its holder (the store's Entry) keeps the slab,
// offset and length, and a Buffer viewing it is made only when someone reads it.
//
// Slabs are append-only: bytes once written never change, so a view handed out (a range
// result, a watch event's prevKv, a batch waiting for LevelDB) stays valid whatever happens
// to its record later; a slab the arena drops lives on while any view holds it. A record
// replaced or deleted leaves a hole. When holes make up more than half of a slab that is no
// longer being filled, its live records are copied to the slab being filled and the arena
// forgets it: at most twice the live bytes are held, about 1.33 times on average under
// random overwrites, and exactly the live bytes for keys written once.

/** Where a record lives; the arena updates it when the record moves. */
export interface RecordHolder {
  /** The slab holding the record; undefined when there is none (a deleted key). */
  slab: Slab | undefined;
  off: number;
  len: number;
}

/** A Buffer viewing `h`'s record, or undefined when it has none. */
export function recordView(h: RecordHolder): Buffer | undefined {
  const s = h.slab;
  return s === undefined ? undefined : s.bytes.subarray(h.off, h.off + h.len);
}

export class Slab {
  /** Bytes handed out from the start of `bytes`. */
  used = 0;
  /** Bytes of records still in place. */
  live = 0;
  /** Everyone placed here, in order (some since moved away or released: checked against holder.slab). */
  holders: RecordHolder[] = [];

  constructor(readonly bytes: Buffer) {}
}

/** The first slab's size; each next one doubles, up to MAX_SLAB_BYTES. A store of a few keys stays small. */
const MIN_SLAB_BYTES = 64 * 1024;
export const MAX_SLAB_BYTES = 1024 * 1024;
/** A record larger than this gets a slab of its own (released whole, never copied). */
const OWN_SLAB_BYTES = 64 * 1024;

export class RecordArena {
  private current: Slab | undefined;
  private nextSize = MIN_SLAB_BYTES;
  private liveBytes = 0;
  private heldBytes = 0;
  private evacuations = 0;

  /** Bytes of live records. */
  get live(): number {
    return this.liveBytes;
  }

  /** Bytes of every slab the arena holds (live records, holes, and the unfilled rest of the current slab). */
  get held(): number {
    return this.heldBytes;
  }

  /**
   * Makes room for a record of `len` bytes for `h`, releasing the record it had. The caller
   * writes the record into `h.slab.bytes` at `h.off` before anything else reads it.
   */
  reserve(h: RecordHolder, len: number): void {
    const prev = h.slab;
    const prevLen = h.len;
    this.place(h, len);
    if (prev !== undefined) this.drop(prev, prevLen);
  }

  /** Copies `record` in as `h`'s record, releasing the one it had. */
  copyIn(h: RecordHolder, record: Buffer): void {
    this.reserve(h, record.length);
    record.copy(h.slab!.bytes, h.off);
  }

  /** Releases `h`'s record (the key was deleted). */
  release(h: RecordHolder): void {
    const prev = h.slab;
    if (prev === undefined) return;
    h.slab = undefined;
    this.drop(prev, h.len);
    h.off = 0;
    h.len = 0;
  }

  /** Slabs evacuated so far (their live records copied out). */
  get evacuated(): number {
    return this.evacuations;
  }

  /** Forgets every record (the store is being rebuilt). Views handed out stay valid. */
  clear(): void {
    this.current = undefined;
    this.nextSize = MIN_SLAB_BYTES;
    this.liveBytes = 0;
    this.heldBytes = 0;
  }

  private place(h: RecordHolder, len: number): void {
    let s: Slab;
    if (len > OWN_SLAB_BYTES) {
      s = this.newSlab(len);
    } else {
      s = this.current !== undefined && this.current.bytes.length - this.current.used >= len ? this.current : this.fresh();
    }
    h.slab = s;
    h.off = s.used;
    h.len = len;
    s.used += len;
    s.live += len;
    s.holders.push(h);
    this.liveBytes += len;
  }

  /** A new slab to fill; the one filled until now is left to empty. */
  private fresh(): Slab {
    const s = this.newSlab(this.nextSize);
    this.nextSize = Math.min(MAX_SLAB_BYTES, this.nextSize * 2);
    const old = this.current;
    this.current = s;
    // A slab mostly emptied while it was being filled is evacuated now that it is not.
    if (old !== undefined && this.sparse(old)) this.evacuate(old);
    return s;
  }

  private newSlab(size: number): Slab {
    this.heldBytes += size;
    // Not from Node's shared pool: a slab is an allocation of its own.
    return new Slab(Buffer.allocUnsafeSlow(size));
  }

  private drop(s: Slab, len: number): void {
    s.live -= len;
    this.liveBytes -= len;
    if (s === this.current) return;
    if (s.live === 0) this.forget(s);
    else if (this.sparse(s)) this.evacuate(s);
  }

  private sparse(s: Slab): boolean {
    return s.live * 2 < s.used;
  }

  /** Copies the live records of `s` to the current slab and forgets `s`. */
  private evacuate(s: Slab): void {
    this.evacuations++;
    const holders = s.holders;
    s.holders = [];
    for (const h of holders) {
      if (h.slab !== s) continue; // moved or released since
      const from = h.off;
      const len = h.len;
      s.live -= len;
      this.liveBytes -= len;
      this.place(h, len);
      s.bytes.copy(h.slab!.bytes, h.off, from, from + len);
    }
    this.forget(s);
  }

  private forget(s: Slab): void {
    if (s === this.current) this.current = undefined;
    s.holders = [];
    this.heldBytes -= s.bytes.length;
  }
}
