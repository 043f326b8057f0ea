// The member's identity, written once as the first WAL record (metadata), format version 1:
//   u8 version (1) | u64be member id | u64be cluster id | u16be name length | name (utf8)
// On restart the identity comes from here, not from flags, as etcd's does.

export interface MemberMeta {
  memberId: bigint;
  clusterId: bigint;
  name: string;
}

const META_VERSION = 1;

export function encodeMemberMeta(m: MemberMeta): Buffer {
  const name = Buffer.from(m.name, 'utf8');
  const b = Buffer.alloc(1 + 8 + 8 + 2 + name.length);
  b[0] = META_VERSION;
  b.writeBigUInt64BE(m.memberId, 1);
  b.writeBigUInt64BE(m.clusterId, 9);
  b.writeUInt16BE(name.length, 17);
  name.copy(b, 19);
  return b;
}

export function decodeMemberMeta(b: Buffer): MemberMeta {
  if (b.length < 19 || b[0] !== META_VERSION) throw new Error(`wal metadata: unsupported member metadata (version ${b[0]})`);
  const len = b.readUInt16BE(17);
  return { memberId: b.readBigUInt64BE(1), clusterId: b.readBigUInt64BE(9), name: b.subarray(19, 19 + len).toString('utf8') };
}
