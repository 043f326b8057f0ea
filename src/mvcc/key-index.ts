import { Revision, compareRevision } from './types';

// The history of one key, as etcd's keyIndex keeps it: a list of generations. A generation
// is one life of the key, from its creation to its deletion; its last revision is the
// tombstone unless it is the current generation. An empty last generation means the key is
// deleted now.
//
//   put@2 put@4 del@6 put@8  ->  [{created 2, ver 3, revs [2,4,6]}, {created 8, ver 1, revs [8]}]

export interface Generation {
  created: Revision;
  version: number;
  revs: Revision[];
}

export interface KeyAt {
  modified: Revision;
  created: Revision;
  version: number;
}

export class KeyIndex {
  modified: Revision = { main: 0, sub: 0 };
  generations: Generation[] = [];

  // No copy of the key here: the store's tree holds it, and a Buffer kept here would keep
  // the first record of the key (or the request that created it) alive for the key's life.

  isEmpty(): boolean {
    return this.generations.length === 1 && this.generations[0].revs.length === 0;
  }

  /** True when the key exists now (its last generation has revisions). */
  isLive(): boolean {
    const last = this.generations[this.generations.length - 1];
    return last !== undefined && last.revs.length > 0;
  }

  put(rev: Revision): void {
    if (compareRevision(rev, this.modified) <= 0) {
      throw new Error(`key-index: put at ${rev.main}.${rev.sub} not after ${this.modified.main}.${this.modified.sub}`);
    }
    if (this.generations.length === 0) this.generations.push({ created: rev, version: 0, revs: [] });
    const g = this.generations[this.generations.length - 1];
    if (g.revs.length === 0) g.created = rev;
    g.revs.push(rev);
    g.version++;
    this.modified = rev;
  }

  /** Records a deletion at `rev` and opens a new, empty generation. */
  tombstone(rev: Revision): void {
    if (!this.isLive()) throw new Error('key-index: tombstone of a key that does not exist');
    this.put(rev);
    this.generations.push({ created: { main: 0, sub: 0 }, version: 0, revs: [] });
  }

  /** The key as it was at store revision `atRev`, or undefined if it did not exist then. */
  get(atRev: number): KeyAt | undefined {
    const g = this.findGeneration(atRev);
    if (g === undefined) return undefined;
    for (let n = g.revs.length - 1; n >= 0; n--) {
      if (g.revs[n].main <= atRev) {
        return { modified: g.revs[n], created: g.created, version: g.version - (g.revs.length - n - 1) };
      }
    }
    return undefined;
  }

  private findGeneration(rev: number): Generation | undefined {
    const last = this.generations.length - 1;
    for (let i = last; i >= 0; i--) {
      const g = this.generations[i];
      if (g.revs.length === 0) continue;
      // A closed generation ends at its tombstone: at or after it the key did not exist.
      if (i !== last && g.revs[g.revs.length - 1].main <= rev) return undefined;
      if (g.revs[0].main <= rev) return g;
    }
    return undefined;
  }

  /** Every revision of this key with main revision > `rev`, oldest first (for watch replay). */
  since(rev: number): Revision[] {
    const out: Revision[] = [];
    for (const g of this.generations) for (const r of g.revs) if (r.main > rev) out.push(r);
    return out;
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
      if (g.revs[g.revs.length - 1].main > atRev) break;
      genIdx++;
    }
    const g = this.generations[genIdx];
    let revIndex = -1;
    for (let n = g.revs.length - 1; n >= 0; n--) {
      if (g.revs[n].main <= atRev) {
        revIndex = n;
        keep.add(revisionId(g.revs[n]));
        break;
      }
    }
    if (g.revs.length > 0) {
      if (revIndex !== -1) g.revs = g.revs.slice(revIndex);
      // A generation reduced to its tombstone is gone entirely.
      if (g.revs.length === 1 && genIdx !== this.generations.length - 1) {
        keep.delete(revisionId(g.revs[0]));
        genIdx++;
      }
    }
    this.generations = this.generations.slice(genIdx);
    return this.isEmpty();
  }
}

export function revisionId(rev: Revision): string {
  return `${rev.main}.${rev.sub}`;
}
