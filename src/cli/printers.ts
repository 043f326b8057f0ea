/**
 * etcdctl's output formats: simple, json (encoding/json of the protobuf structs) and
 * fields, for every response cairnctl prints.
 */
import type { KeyValue, ResponseHeader, TxnOpResult, TxnResult, GetResult, PutResult, DeleteResult, WatchBatch, Member, MemberStatus, Alarm } from '../client';
import { goQuote, hexBytes, hex16, humanizeBytes, jobj, jstr, obool, obytes, onum, type Member as JM } from './gofmt';
import { Exit, exitWithError, out, paint } from './runtime';

export type Format = 'simple' | 'json' | 'fields' | 'table' | 'protobuf';

export interface Display {
  format: Format;
  hex: boolean;
  valueOnly: boolean;
}

// ---------------------------------------------------------------------------------
// JSON pieces

export function jHeader(h: ResponseHeader): string {
  return jobj(jHeaderMembers(h));
}
export function jHeaderMembers(h: ResponseHeader): JM[] {
  return [onum('cluster_id', h.clusterId), onum('member_id', h.memberId), onum('revision', h.revision), onum('raft_term', h.raftTerm)];
}
export function jKv(kv: KeyValue): string {
  return jobj([
    obytes('key', kv.key),
    onum('create_revision', kv.createRevision),
    onum('mod_revision', kv.modRevision),
    onum('version', kv.version),
    obytes('value', kv.value),
    onum('lease', kv.lease),
  ]);
}
function jArr(name: string, items: string[]): JM {
  return items.length === 0 ? null : [name, '[' + items.join(',') + ']'];
}
export function jGet(r: GetResult): string {
  return jobj([['header', jHeader(r.header)], jArr('kvs', r.kvs.map(jKv)), obool('more', r.more), onum('count', r.count)]);
}
export function jPut(r: PutResult): string {
  return jobj([['header', jHeader(r.header)], r.prevKv ? ['prev_kv', jKv(r.prevKv)] : null]);
}
export function jDel(r: DeleteResult): string {
  return jobj([['header', jHeader(r.header)], onum('deleted', r.deleted), jArr('prev_kvs', r.prevKvs.map(jKv))]);
}
function jOp(r: TxnOpResult): string {
  switch (r.type) {
    case 'get':
      return jobj([['Response', jobj([['ResponseRange', jGet(r)]])]]);
    case 'put':
      return jobj([['Response', jobj([['ResponsePut', jPut(r)]])]]);
    case 'delete':
      return jobj([['Response', jobj([['ResponseDeleteRange', jDel(r)]])]]);
    case 'txn':
      return jobj([['Response', jobj([['ResponseTxn', jTxn(r)]])]]);
  }
}
export function jTxn(r: TxnResult): string {
  return jobj([['header', jHeader(r.header)], obool('succeeded', r.succeeded), jArr('responses', r.responses.map(jOp))]);
}

// ---------------------------------------------------------------------------------
// simple / fields pieces

function printKV(d: Display, kv: KeyValue): void {
  if (!d.valueOnly) out(Buffer.concat([d.hex ? Buffer.from(hexBytes(kv.key)) : kv.key, Buffer.from('\n')]));
  out(Buffer.concat([d.hex ? Buffer.from(hexBytes(kv.value)) : kv.value, Buffer.from('\n')]));
}

function fHdr(h: ResponseHeader): void {
  out(`"ClusterID" : ${h.clusterId}\n"MemberID" : ${h.memberId}\n"Revision" : ${h.revision}\n"RaftTerm" : ${h.raftTerm}\n`);
}

function fKv(pfx: string, kv: KeyValue): void {
  out(
    `"${pfx}Key" : ${goQuote(kv.key)}\n"${pfx}CreateRevision" : ${kv.createRevision}\n"${pfx}ModRevision" : ${kv.modRevision}\n` +
      `"${pfx}Version" : ${kv.version}\n"${pfx}Value" : ${goQuote(kv.value)}\n"${pfx}Lease" : ${kv.lease}\n`,
  );
}

// ---------------------------------------------------------------------------------
// KV

export function printGet(d: Display, r: GetResult): void {
  if (d.format === 'table') unsupported(d);
  if (d.format === 'json') return out(jGet(r) + '\n');
  if (d.format === 'fields') {
    fHdr(r.header);
    for (const kv of r.kvs) fKv('', kv);
    out(`"More" : ${r.more}\n"Count" : ${r.count}\n`);
    return;
  }
  for (const kv of r.kvs) printKV(d, kv);
}

export function printPut(d: Display, r: PutResult): void {
  if (d.format === 'table') unsupported(d);
  if (d.format === 'json') return out(jPut(r) + '\n');
  if (d.format === 'fields') {
    fHdr(r.header);
    if (r.prevKv) fKv('Prev', r.prevKv);
    return;
  }
  out('OK\n');
  if (r.prevKv) printKV(d, r.prevKv);
}

export function printDel(d: Display, r: DeleteResult): void {
  if (d.format === 'table') unsupported(d);
  if (d.format === 'json') return out(jDel(r) + '\n');
  if (d.format === 'fields') {
    fHdr(r.header);
    out(`"Deleted" : ${r.deleted}\n`);
    for (const kv of r.prevKvs) fKv('Prev', kv);
    return;
  }
  out(`${r.deleted}\n`);
  for (const kv of r.prevKvs) printKV(d, kv);
}

export function printTxn(d: Display, r: TxnResult): void {
  if (d.format === 'table') unsupported(d);
  if (d.format === 'json') return out(jTxn(r) + '\n');
  if (d.format === 'fields') {
    fHdr(r.header);
    out(`"Succeeded" : ${r.succeeded}\n`);
    for (const op of r.responses) {
      if (op.type === 'get') printGet(d, op);
      else if (op.type === 'put') printPut(d, op);
      else if (op.type === 'delete') printDel(d, op);
    }
    return;
  }
  out(r.succeeded ? 'SUCCESS\n' : 'FAILURE\n');
  for (const op of r.responses) {
    out('\n');
    if (op.type === 'get') printGet(d, op);
    else if (op.type === 'put') printPut(d, op);
    else if (op.type === 'delete') printDel(d, op);
    else out('unexpected response\n');
  }
}

// ---------------------------------------------------------------------------------
// Watch

export function printWatch(d: Display, b: WatchBatch, extra: { compactRevision?: number; canceled?: boolean } = {}): void {
  if (d.format === 'table') unsupported(d);
  if (d.format === 'json') {
    const events = b.events.map((e) =>
      jobj([e.type === 'delete' ? ['type', '1'] : null, ['kv', jKv(e.kv)], e.prevKv ? ['prev_kv', jKv(e.prevKv)] : null]),
    );
    out(
      `{"Header":${jHeader(b.header)},"Events":${events.length === 0 ? 'null' : '[' + events.join(',') + ']'},` +
        `"CompactRevision":${extra.compactRevision ?? 0},"Canceled":${extra.canceled === true},"Created":false}\n`,
    );
    return;
  }
  if (d.format === 'fields') {
    fHdr(b.header);
    for (const e of b.events) {
      out(`"Type" : ${e.type === 'put' ? 'PUT' : 'DELETE'}\n`);
      if (e.prevKv) fKv('Prev', e.prevKv);
      fKv('', e.kv);
    }
    return;
  }
  for (const e of b.events) {
    out(e.type === 'put' ? paint(process.stdout, 'green', 'PUT') + '\n' : paint(process.stdout, 'red', 'DELETE') + '\n');
    if (e.prevKv) printKV(d, e.prevKv);
    printKV(d, e.kv);
  }
}

// ---------------------------------------------------------------------------------
// Lease

export function printGrant(d: Display, h: ResponseHeader, id: bigint, ttl: number): void {
  if (d.format === 'table') unsupported(d);
  if (d.format === 'json') return out(jobj([...jHeaderMembers(h), ['ID', String(id)], ['TTL', String(ttl)], ['Error', '""']]) + '\n');
  if (d.format === 'fields') {
    fHdr(h);
    return out(`"ID" : ${id}\n"TTL" : ${ttl}\n`);
  }
  out(`lease ${hex16(id)} granted with TTL(${ttl}s)\n`);
}

export function printRevoke(d: Display, h: ResponseHeader, id: bigint): void {
  if (d.format === 'table') unsupported(d);
  if (d.format === 'json') return out(jobj([['header', jHeader(h)]]) + '\n');
  if (d.format === 'fields') return fHdr(h);
  out(`lease ${hex16(id)} revoked\n`);
}

export function printKeepAlive(d: Display, h: ResponseHeader, id: bigint, ttl: number): void {
  if (d.format === 'table') unsupported(d);
  if (d.format === 'json') return out(jobj([...jHeaderMembers(h), ['ID', String(id)], ['TTL', String(ttl)]]) + '\n');
  if (d.format === 'fields') {
    fHdr(h);
    return out(`"ID" : ${id}\n"TTL" : ${ttl}\n`);
  }
  out(`lease ${hex16(id)} keepalived with TTL(${ttl})\n`);
}

export function printTimeToLive(d: Display, r: { header: ResponseHeader; id: bigint; ttl: number; grantedTtl: number; keys: Buffer[] }, keys: boolean): void {
  if (d.format === 'table') unsupported(d);
  if (d.format === 'json') {
    const ks = r.keys.length === 0 ? 'null' : '[' + r.keys.map((k) => JSON.stringify(k.toString('base64'))).join(',') + ']';
    return out(jobj([...jHeaderMembers(r.header), ['id', String(r.id)], ['ttl', String(r.ttl)], ['granted-ttl', String(r.grantedTtl)], ['keys', ks]]) + '\n');
  }
  if (d.format === 'fields') {
    fHdr(r.header);
    out(`"ID" : ${r.id}\n"TTL" : ${r.ttl}\n"GrantedTTL" : ${r.grantedTtl}\n`);
    for (const k of r.keys) out(`"Key" : ${goQuote(k)}\n`);
    return;
  }
  if (r.grantedTtl === 0 && r.ttl === -1) return out(`lease ${hex16(r.id)} already expired\n`);
  let txt = `lease ${hex16(r.id)} granted with TTL(${r.grantedTtl}s), remaining(${r.ttl}s)`;
  if (keys) txt += `, attached keys([${r.keys.map((k) => k.toString('latin1')).join(' ')}])`;
  out(Buffer.concat([Buffer.from(txt, 'latin1'), Buffer.from('\n')]));
}

export function printLeases(d: Display, h: ResponseHeader, ids: bigint[]): void {
  if (d.format === 'table') unsupported(d);
  if (d.format === 'json') return out(jobj([...jHeaderMembers(h), ['leases', '[' + ids.map((id) => `{"id":${id}}`).join(',') + ']']]) + '\n');
  if (d.format === 'fields') {
    fHdr(h);
    for (const id of ids) out(`"ID" : ${id}\n`);
    return;
  }
  out(`found ${ids.length} leases\n`);
  for (const id of ids) out(`${hex16(id)}\n`);
}

// ---------------------------------------------------------------------------------
// Cluster and maintenance

function jMember(m: Member): string {
  return jobj([
    onum('ID', m.id),
    m.name ? ['name', jstr(m.name)] : null,
    jArr('peerURLs', m.peerUrls.map(jstr)),
    jArr('clientURLs', m.clientUrls.map(jstr)),
    obool('isLearner', m.isLearner),
  ]);
}

export function memberRows(members: Member[]): string[][] {
  return members.map((m) => [
    m.id.toString(16),
    m.name.length > 0 ? 'started' : 'unstarted',
    m.name,
    m.peerUrls.join(','),
    m.clientUrls.join(','),
    String(m.isLearner),
  ]);
}

export function printMemberList(d: Display, h: ResponseHeader, members: Member[]): void {
  if (d.format === 'json') return out(jobj([['header', jHeader(h)], jArr('members', members.map(jMember))]) + '\n');
  if (d.format === 'fields') {
    fHdr(h);
    for (const m of members) {
      out(`"ID" : ${m.id}\n"Name" : ${goQuote(m.name)}\n`);
      for (const u of m.peerUrls) out(`"PeerURL" : ${goQuote(u)}\n`);
      for (const u of m.clientUrls) out(`"ClientURL" : ${goQuote(u)}\n`);
      out(`"IsLearner" : ${m.isLearner}\n\n`);
    }
    return;
  }
  if (d.format === 'table') return printTable(['ID', 'STATUS', 'NAME', 'PEER ADDRS', 'CLIENT ADDRS', 'IS LEARNER'], memberRows(members));
  for (const row of memberRows(members)) out(row.join(', ') + '\n');
}

export interface EpStatus {
  ep: string;
  status: MemberStatus;
}

function jStatus(s: MemberStatus): string {
  return jobj([
    ['header', jHeader(s.header)],
    s.version ? ['version', jstr(s.version)] : null,
    onum('dbSize', s.dbSize),
    onum('leader', s.leader),
    onum('raftIndex', s.raftIndex),
    onum('raftTerm', s.raftTerm),
    onum('raftAppliedIndex', s.raftAppliedIndex),
    jArr('errors', s.errors.map(jstr)),
    onum('dbSizeInUse', s.dbSizeInUse),
    obool('isLearner', s.isLearner),
  ]);
}

export function statusRows(list: EpStatus[]): string[][] {
  return list.map(({ ep, status: s }) => [
    ep,
    s.header.memberId.toString(16),
    s.version,
    humanizeBytes(s.dbSize),
    String(s.leader === s.header.memberId),
    String(s.isLearner),
    String(s.raftTerm),
    String(s.raftIndex),
    String(s.raftAppliedIndex),
    s.errors.join(', '),
  ]);
}

export function printEndpointStatus(d: Display, list: EpStatus[]): void {
  if (d.format === 'json') return out('[' + list.map((e) => `{"Endpoint":${jstr(e.ep)},"Status":${jStatus(e.status)}}`).join(',') + ']\n');
  if (d.format === 'fields') {
    for (const { ep, status: s } of list) {
      fHdr(s.header);
      out(`"Version" : ${goQuote(s.version)}\n"DBSize" : ${s.dbSize}\n"Leader" : ${s.leader}\n"IsLearner" : ${s.isLearner}\n`);
      out(`"RaftIndex" : ${s.raftIndex}\n"RaftTerm" : ${s.raftTerm}\n"RaftAppliedIndex" : ${s.raftAppliedIndex}\n"Errors" : [${s.errors.join(' ')}]\n`);
      out(`"Endpoint" : ${goQuote(ep)}\n\n`);
    }
    return;
  }
  if (d.format === 'table') {
    return printTable(['ENDPOINT', 'ID', 'VERSION', 'DB SIZE', 'IS LEADER', 'IS LEARNER', 'RAFT TERM', 'RAFT INDEX', 'RAFT APPLIED INDEX', 'ERRORS'], statusRows(list));
  }
  for (const row of statusRows(list)) out(row.join(', ') + '\n');
}

export interface EpHashKV {
  ep: string;
  header: ResponseHeader;
  hash: number;
  compactRevision: number;
}

export function printEndpointHashKV(d: Display, list: EpHashKV[]): void {
  if (d.format === 'json') {
    return out(
      '[' +
        list
          .map((e) => `{"Endpoint":${jstr(e.ep)},"HashKV":${jobj([['header', jHeader(e.header)], onum('hash', e.hash), onum('compact_revision', e.compactRevision)])}}`)
          .join(',') +
        ']\n',
    );
  }
  if (d.format === 'fields') {
    for (const e of list) {
      fHdr(e.header);
      out(`"Endpoint" : ${goQuote(e.ep)}\n"Hash" : ${e.hash}\n\n`);
    }
    return;
  }
  if (d.format === 'table') return printTable(['ENDPOINT', 'HASH'], list.map((e) => [e.ep, String(e.hash)]));
  for (const e of list) out(`${e.ep}, ${e.hash}\n`);
}

export interface EpHealth {
  ep: string;
  health: boolean;
  took: string;
  error: string;
}

export function printEndpointHealth(d: Display, list: EpHealth[]): void {
  if (d.format === 'json') {
    return out('[' + list.map((h) => jobj([['endpoint', jstr(h.ep)], ['health', String(h.health)], ['took', jstr(h.took)], h.error ? ['error', jstr(h.error)] : null])).join(',') + ']\n');
  }
  if (d.format === 'fields') {
    for (const h of list) out(`"Endpoint" : ${goQuote(h.ep)}\n"Health" : ${h.health}\n"Took" : ${h.took}\n"Error" : ${h.error}\n\n`);
    return;
  }
  if (d.format === 'table') return printTable(['ENDPOINT', 'HEALTH', 'TOOK', 'ERROR'], list.map((h) => [h.ep, String(h.health), h.took, h.error]));
  for (const h of list) {
    if (h.error === '') process.stderr.write(`${h.ep} is healthy: successfully committed proposal: took = ${h.took}\n`);
    else process.stderr.write(`${h.ep} is unhealthy: failed to commit proposal: ${h.error}\n`);
  }
}

const ALARM_ENUM: Record<string, [number, string]> = { none: [0, 'NONE'], nospace: [1, 'NOSPACE'], corrupt: [2, 'CORRUPT'] };

export function printAlarm(d: Display, h: ResponseHeader | null, alarms: Alarm[]): void {
  if (d.format === 'table') unsupported(d);
  if (d.format === 'json') {
    const as = alarms.map((a) => jobj([onum('memberID', a.memberId), onum('alarm', ALARM_ENUM[a.alarm][0])]));
    const hdr = h === null ? null : jHeader(h);
    return out(jobj([hdr === null || hdr === '{}' ? null : ['header', hdr], jArr('alarms', as)]) + '\n');
  }
  if (d.format === 'fields') {
    if (h) fHdr(h);
    else fHdr({ clusterId: 0n, memberId: 0n, revision: 0, raftTerm: 0n });
    for (const a of alarms) out(`"MemberID" : ${a.memberId}\n"AlarmType" : ${ALARM_ENUM[a.alarm][1]}\n\n`);
    return;
  }
  for (const a of alarms) out(`memberID:${a.memberId} alarm:${ALARM_ENUM[a.alarm][1]} \n`);
}

/** olekukonko/tablewriter's default table, as etcdctl -w table prints it. */
export function printTable(hdr: string[], rows: string[][]): void {
  const w = hdr.map((h, i) => Math.max(h.length, ...rows.map((r) => [...r[i]].length)));
  const line = '+' + w.map((n) => '-'.repeat(n + 2)).join('+') + '+\n';
  const center = (s: string, n: number): string => {
    const pad = n - s.length;
    const l = Math.floor(pad / 2);
    return ' '.repeat(l) + s + ' '.repeat(pad - l);
  };
  out(line + '|' + hdr.map((h, i) => ' ' + center(h, w[i]) + ' ').join('|') + '|\n' + line);
  for (const r of rows) out('|' + r.map((c, i) => ' ' + ' '.repeat(w[i] - [...c].length) + c + ' ').join('|') + '|\n');
  out(line);
}

/** etcdctl's printerUnsupported: the call has been made; only printing fails. */
export function unsupported(d: Display): never {
  return exitWithError(Exit.BadFeature, `${d.format} not supported as output format`);
}

/** Go's %16x: hex, space-padded to 16. */
export function hexPad16(id: bigint): string {
  return id.toString(16).padStart(16, ' ');
}

function jMembers(h: ResponseHeader, members: Member[], extra: JM[] = []): string {
  return jobj([['header', jHeader(h)], ...extra, jArr('members', members.map(jMember))]);
}

export function printMemberAdd(d: Display, r: { header: ResponseHeader; member: Member; members: Member[] }): void {
  if (d.format === 'json') return out(jMembers(r.header, r.members, [['member', jMember(r.member)]]) + '\n');
  if (d.format !== 'simple') unsupported(d);
  out(`Member ${hexPad16(r.member.id)} added to cluster ${hexPad16(r.header.clusterId)}\n`);
}

/** member remove / update / promote */
export function printMemberChange(d: Display, verb: 'removed from' | 'updated in' | 'promoted in', id: bigint, r: { header: ResponseHeader; members: Member[] }): void {
  if (d.format === 'json') return out(jMembers(r.header, r.members) + '\n');
  if (d.format !== 'simple') unsupported(d);
  out(`Member ${hexPad16(id)} ${verb} cluster ${hexPad16(r.header.clusterId)}\n`);
}

export function printMoveLeader(d: Display, leader: bigint, target: bigint, h: ResponseHeader): void {
  if (d.format === 'json') {
    const hdr = jHeader(h);
    return out(jobj([hdr === '{}' ? null : ['header', hdr]]) + '\n');
  }
  if (d.format !== 'simple') unsupported(d);
  out(`Leadership transferred from ${leader.toString(16)} to ${target.toString(16)}\n`);
}
