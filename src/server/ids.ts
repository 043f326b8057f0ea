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
  private readonly prefix16: number;
  private suffix: bigint;

  constructor(memberId: bigint, nowMs: number) {
    this.prefix16 = Number(memberId & 0xffffn);
    this.prefix = BigInt(this.prefix16) << 48n;
    this.suffix = (BigInt(nowMs) & 0xff_ffff_ffffn) << 8n;
  }

  next(): bigint {
    this.suffix = (this.suffix + 1n) & 0xffff_ffff_ffffn;
    return this.prefix | this.suffix;
  }

  /**
   * An ID's key among the IDs this generator made: its low 48 bits as a number (unique
   * among them), or -1 for an ID of another member.
   */
  ownKey(id: bigint): number {
    return Number(id >> 48n) === this.prefix16 ? Number(id & 0xffff_ffff_ffffn) : -1;
  }

  /**
   * ownKey of the ID that an encoded InternalRequest starts with (field 1, a varint, as
   * the proposer encodes it), read without decoding the message; -1 when the bytes do not
   * start with one, or it is another member's.
   */
  ownKeyOf(encoded: Uint8Array): number {
    if (encoded[0] !== 0x08) return -1;
    let low = 0; // bits 0-48 (seven 7-bit groups), exact in a double
    let mul = 1;
    let high = 0; // bits 49-63
    for (let i = 0; i < 10; i++) {
      const b = encoded[1 + i];
      if (b === undefined) return -1;
      if (i < 7) {
        low += (b & 0x7f) * mul;
        mul *= 128;
      } else high |= (b & 0x7f) << (7 * (i - 7));
      if (b < 0x80) {
        const prefix16 = (Math.floor(low / 2 ** 48) | (high << 1)) & 0xffff;
        return prefix16 === this.prefix16 ? low % 2 ** 48 : -1;
      }
    }
    return -1;
  }
}

export function idToHex(id: bigint): string {
  return id.toString(16);
}
