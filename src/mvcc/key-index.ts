import type { Revision } from './types';

// The history of one key, as etcd's keyIndex keeps it: a list of generations. A generation
// is one life of the key, from its creation to its deletion; its last revision is the
// tombstone unless it is the current generation. An empty last generation means the key is
// deleted now.
//
//   put@2 put@4 del@6 put@8  ->  [[2, 4, 6], [8]]
//
// Only keys with more than one revision since the last compaction (or a tombstone) have a
// KeyIndex: the store keeps a key with a single live revision without one (see store.ts), so
// a generation here is just its revisions, nothing else per key that nobody reads.

/**
 * One generation's revisions as numbers, in pairs: [main0, sub0, main1, sub1, ...]. A key
 * overwritten a million times keeps a million revisions until a compaction: packed, they are
 * two small integers each in one array, not an object each for the GC to copy and trace.
 */
export type Generation = number[];

export class KeyIndex {
  generations: Generation[];

  // No copy of the key here: the store's tree holds it, and a Buffer kept here would keep
  // the first record of the key (or the request that created it) alive for the key's life.

  /** A key whose history is `first`, a live revision. */
  constructor(first: Revision) {
    this.generations = [[first.main, first.sub]];
  }

  isEmpty(): boolean {
    return this.generations.length === 1 && this.generations[0].length === 0;
  }

  /** True when the key exists now (its last generation has revisions). */
  isLive(): boolean {
    return this.generations[this.generations.length - 1].length > 0;
  }

  /** True when the history is one live revision and nothing else (the store can drop the index). */
  isSingle(): boolean {
    return this.generations.length === 1 && this.generations[0].length === 2;
  }

  put(rev: Revision): void {
    const gens = this.generations;
    const g = gens[gens.length - 1];
    if (!this.isEmpty()) {
      // The key's last revision: its last put, or the tombstone that closed the generation before.
      const last = g.length > 0 ? g : gens[gens.length - 2];
      const main = last[last.length - 2];
      const sub = last[last.length - 1];
      if (rev.main < main || (rev.main === main && rev.sub <= sub)) throw new Error(`key-index: put at ${rev.main}.${rev.sub} not after ${main}.${sub}`);
    }
    g.push(rev.main, rev.sub);
  }

  /** Records a deletion at `rev` and opens a new, empty generation. */
  tombstone(rev: Revision): void {
    if (!this.isLive()) throw new Error('key-index: tombstone of a key that does not exist');
    this.put(rev);
    this.generations.push([]);
  }

  /** The key's revision visible at store revision `atRev`, or undefined if it did not exist then. */
  get(atRev: number): Revision | undefined {
    const g = this.findGeneration(atRev);
    if (g === undefined) return undefined;
    for (let n = g.length - 2; n >= 0; n -= 2) if (g[n] <= atRev) return { main: g[n], sub: g[n + 1] };
    return undefined;
  }

  private findGeneration(rev: number): Generation | undefined {
    const last = this.generations.length - 1;
    for (let i = last; i >= 0; i--) {
      const g = this.generations[i];
      if (g.length === 0) continue;
      // A closed generation ends at its tombstone: at or after it the key did not exist.
      if (i !== last && g[g.length - 2] <= rev) return undefined;
      if (g[0] <= rev) return g;
    }
    return undefined;
  }

  /**
   * Drops history older than `atRev`, keeping for this key the newest revision at or below it
   * (readers at `atRev` still need it) unless that revision is a tombstone. Adds the revisions
   * that must stay in storage to `keep`. Returns true when the key has no history left.
   */
  compact(atRev: number, keep: Set<string>): boolean {
    let genIdx = 0;
    while (genIdx < this.generations.length - 1) {
      const g = this.generations[genIdx];
      if (g[g.length - 2] > atRev) break;
      genIdx++;
    }
    let g = this.generations[genIdx];
    let revIndex = -1;
    for (let n = g.length - 2; n >= 0; n -= 2) {
      if (g[n] <= atRev) {
        revIndex = n;
        keep.add(revisionId(g[n], g[n + 1]));
        break;
      }
    }
    if (g.length > 0) {
      if (revIndex !== -1) {
        g = g.slice(revIndex);
        this.generations[genIdx] = g;
      }
      // A generation reduced to its tombstone is gone entirely.
      if (g.length === 2 && genIdx !== this.generations.length - 1) {
        keep.delete(revisionId(g[0], g[1]));
        genIdx++;
      }
    }
    this.generations = this.generations.slice(genIdx);
    return this.isEmpty();
  }
}

export function revisionId(main: number, sub: number): string {
  return `${main}.${sub}`;
}
