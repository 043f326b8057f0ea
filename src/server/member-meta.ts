// The member's identity and the cluster it was created in, written once as the first WAL
// record (metadata). On restart they come from here, not from flags, as etcd's do.
//
// Format version 2 (version 1, a single member without the member list, is still read):
//   u8 version (2) | u64be member id | u64be cluster id | str name
//   u16be member count, then per member: u64be id | str name | u16be url count | str url...
// where str = u16be byte length | utf8 bytes.

export interface ClusterMember {
  id: bigint;
  name: string;
  peerUrls: string[];
}

export interface MemberMeta {
  memberId: bigint;
  clusterId: bigint;
  name: string;
  members: ClusterMember[];
}

export function encodeMemberMeta(m: MemberMeta): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(17);
  head[0] = 2;
  head.writeBigUInt64BE(m.memberId, 1);
  head.writeBigUInt64BE(m.clusterId, 9);
  parts.push(head, str(m.name), u16(m.members.length));
  for (const mem of m.members) {
    const id = Buffer.alloc(8);
    id.writeBigUInt64BE(mem.id);
    parts.push(id, str(mem.name), u16(mem.peerUrls.length), ...mem.peerUrls.map(str));
  }
  return Buffer.concat(parts);
}

export function decodeMemberMeta(b: Buffer): MemberMeta {
  const version = b[0];
  if (version !== 1 && version !== 2) throw new Error(`wal metadata: unsupported member metadata (version ${version})`);
  const memberId = b.readBigUInt64BE(1);
  const clusterId = b.readBigUInt64BE(9);
  let off = 17;
  const readStr = (): string => {
    const len = b.readUInt16BE(off);
    const s = b.subarray(off + 2, off + 2 + len).toString('utf8');
    off += 2 + len;
    return s;
  };
  const name = readStr();
  if (version === 1) return { memberId, clusterId, name, members: [{ id: memberId, name, peerUrls: [] }] };
  const count = b.readUInt16BE(off);
  off += 2;
  const members: ClusterMember[] = [];
  for (let i = 0; i < count; i++) {
    const id = b.readBigUInt64BE(off);
    off += 8;
    const memberName = readStr();
    const urls = b.readUInt16BE(off);
    off += 2;
    const peerUrls: string[] = [];
    for (let j = 0; j < urls; j++) peerUrls.push(readStr());
    members.push({ id, name: memberName, peerUrls });
  }
  return { memberId, clusterId, name, members };
}

/** Parses --initial-cluster ("name=url,name=url,..."; a name may repeat for several URLs). */
export function parseInitialCluster(spec: string): Array<{ name: string; peerUrls: string[] }> {
  const byName = new Map<string, string[]>();
  for (const part of spec.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`--initial-cluster: "${part}" is not name=peerURL`);
    const name = part.slice(0, eq);
    const urls = byName.get(name) ?? [];
    urls.push(part.slice(eq + 1));
    byName.set(name, urls);
  }
  return [...byName].map(([name, peerUrls]) => ({ name, peerUrls }));
}

function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([u16(b.length), b]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
