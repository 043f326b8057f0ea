import { createHash } from 'node:crypto';

// Member and cluster IDs are derived as etcd derives them, so that members started from the
// same flags agree without talking, and a default single member has etcd's familiar IDs.
//   member ID  = first 8 bytes (big-endian) of sha1(sorted peer URLs joined + cluster token)
//   cluster ID = first 8 bytes of sha1(the sorted member IDs as 8-byte big-endian values)
// IDs are uint64 and live as bigint.

export function computeMemberId(peerUrls: readonly string[], clusterToken: string): bigint {
  const joined = [...peerUrls].sort().join('');
  const hash = createHash('sha1').update(joined + clusterToken, 'utf8').digest();
  return hash.readBigUInt64BE(0);
}

/**
 * Members added with `member add` get IDs from their peer URLs and this fixed salt (etcd adds
 * the time instead), so the new member derives the same ID from its own flags. A removed
 * member's peer URLs therefore cannot be added again under the same URLs.
 */
export const MEMBER_ADD_TOKEN = 'cairn-member-add';

export function computeClusterId(memberIds: readonly bigint[]): bigint {
  const sorted = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const b = Buffer.alloc(8 * sorted.length);
  sorted.forEach((id, i) => b.writeBigUInt64BE(id, 8 * i));
  return createHash('sha1').update(b).digest().readBigUInt64BE(0);
}

/**
 * Unique proposal IDs in etcd's scheme: the member ID's low 16 bits, then a millisecond
 * timestamp of 40 bits taken at start, then a counter, so IDs of different members and of
 * successive runs of one member do not collide.
 */
export class RequestIdGenerator {
  private readonly prefix: bigint;
  private suffix: bigint;

  constructor(memberId: bigint, nowMs: number) {
    this.prefix = (memberId & 0xffffn) << 48n;
    this.suffix = (BigInt(nowMs) & 0xff_ffff_ffffn) << 8n;
  }

  next(): bigint {
    this.suffix = (this.suffix + 1n) & 0xffff_ffff_ffffn;
    return this.prefix | this.suffix;
  }
}

export function idToHex(id: bigint): string {
  return id.toString(16);
}
