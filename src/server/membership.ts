import { Backend } from '../mvcc/backend';
import type { ClusterMember } from './member-meta';

// The cluster's members as the log says they are: changed only by applying membership
// entries (add, remove, promote, update), so every member agrees. Kept in LevelDB beside
// the store (and so inside snapshots); seeded from the members the cluster started with.
//
// LevelDB layout, format version 1:  "M" | member id (u64be) -> utf8 JSON {v:1, name, peerUrls, clientUrls, isLearner}

const MEMBER_PREFIX = 0x4d; // 'M'

export interface Member extends ClusterMember {
  isLearner: boolean;
  /** Published by the member itself once it runs (empty until then). */
  clientUrls?: string[];
}

export class Membership {
  private readonly members = new Map<bigint, Member>();
  /** IDs once members and removed: Raft must never see them again. */
  private readonly removed = new Set<bigint>();

  constructor(private readonly backend: Backend) {}

  /** Loads the members from LevelDB; when there are none yet, the initial ones are written. */
  async load(initial: ClusterMember[]): Promise<void> {
    this.members.clear();
    this.removed.clear();
    await this.backend.scan(Buffer.of(MEMBER_PREFIX), Buffer.of(MEMBER_PREFIX + 1), (chunk) => {
      for (const [k, v] of chunk) {
        const id = k.readBigUInt64BE(1);
        const m = JSON.parse(v.toString('utf8')) as { v: number; name: string; peerUrls: string[]; clientUrls?: string[]; isLearner: boolean; removed?: boolean };
        if (m.removed) this.removed.add(id);
        else this.members.set(id, { id, name: m.name, peerUrls: m.peerUrls, clientUrls: m.clientUrls ?? [], isLearner: m.isLearner });
      }
    });
    if (this.members.size === 0) for (const m of initial) this.put({ ...m, isLearner: false });
  }

  list(): Member[] {
    return [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  get(id: bigint): Member | undefined {
    return this.members.get(id);
  }

  wasRemoved(id: bigint): boolean {
    return this.removed.has(id);
  }

  /** Adds or replaces a member (written with the apply batch). */
  put(m: Member): void {
    this.members.set(m.id, m);
    this.backend.put(key(m.id), Buffer.from(JSON.stringify({ v: 1, name: m.name, peerUrls: m.peerUrls, clientUrls: m.clientUrls ?? [], isLearner: m.isLearner }), 'utf8'));
  }

  remove(id: bigint): void {
    const m = this.members.get(id);
    this.members.delete(id);
    this.removed.add(id);
    this.backend.put(key(id), Buffer.from(JSON.stringify({ v: 1, name: m?.name ?? '', peerUrls: m?.peerUrls ?? [], isLearner: false, removed: true }), 'utf8'));
  }
}

function key(id: bigint): Buffer {
  const b = Buffer.alloc(9);
  b[0] = MEMBER_PREFIX;
  b.writeBigUInt64BE(id, 1);
  return b;
}
