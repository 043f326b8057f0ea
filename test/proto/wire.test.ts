// Wire-compatibility checks for the etcd v3.4 protobuf definitions in proto/.
//
// Every fixture below was worked out by hand from the field numbers and wire
// types of etcd's .proto files (tag byte = field_number << 3 | wire_type, with
// wire type 0 = varint and 2 = length-delimited), so a wrong field number,
// type or packing in proto/ shows up as a byte mismatch here.
import { describe, expect, it } from 'vitest';
import Long from 'long';
import { authpb, etcdserverpb, mvccpb, v3electionpb, v3lockpb } from '../../src/gen/proto';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex').replace(/(..)(?!$)/g, '$1 ');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));
const str = (b: Uint8Array | null | undefined): string => Buffer.from(b ?? new Uint8Array()).toString('utf8');
const L = (n: number): Long => Long.fromNumber(n);
const U = (s: string): Long => Long.fromString(s, true);
// Nested messages are typed as optional-property shapes; unwrap a decoded 64-bit field.
const num = (v: Long | null | undefined): number => {
  expect(Long.isLong(v)).toBe(true);
  return (v as Long).toNumber();
};

describe('KV messages', () => {
  it('RangeRequest basic fields', () => {
    const buf = etcdserverpb.RangeRequest.encode({ key: bytes('a'), rangeEnd: bytes('b'), limit: L(5) }).finish();
    expect(hex(buf)).toBe('0a 01 61 12 01 62 18 05');
    const back = etcdserverpb.RangeRequest.decode(buf);
    expect(str(back.key)).toBe('a');
    expect(str(back.rangeEnd)).toBe('b');
    expect(back.limit.toNumber()).toBe(5);
  });

  it('RangeRequest sort options, flags and revision filters (fields 5..13)', () => {
    const buf = etcdserverpb.RangeRequest.encode({
      key: bytes('k'),
      sortOrder: etcdserverpb.RangeRequest.SortOrder.DESCEND,
      sortTarget: etcdserverpb.RangeRequest.SortTarget.MOD,
      serializable: true,
      keysOnly: true,
      countOnly: true,
      minModRevision: L(300),
      maxCreateRevision: L(7),
    }).finish();
    // 300 = 0b10_0101100 -> varint ac 02; field 13 varint tag = 13<<3 = 0x68
    expect(hex(buf)).toBe('0a 01 6b 28 02 30 03 38 01 40 01 48 01 50 ac 02 68 07');
  });

  it('PutRequest with lease, prev_kv, ignore_value, ignore_lease', () => {
    const buf = etcdserverpb.PutRequest.encode({
      key: bytes('k'),
      value: bytes('v'),
      lease: L(0x1234),
      prevKv: true,
      ignoreValue: true,
      ignoreLease: true,
    }).finish();
    expect(hex(buf)).toBe('0a 01 6b 12 01 76 18 b4 24 20 01 28 01 30 01');
  });

  it('PutResponse carries prev_kv as an mvccpb.KeyValue (field 2)', () => {
    // header{revision:9}, prev_kv{key:"k", create_revision:2, mod_revision:3, version:1, value:"o", lease:0}
    const fixture = '0a 02 18 09 12 0c 0a 01 6b 10 02 18 03 20 01 2a 01 6f';
    const msg = etcdserverpb.PutResponse.decode(unhex(fixture));
    expect(num(msg.header!.revision)).toBe(9);
    expect(str(msg.prevKv!.key)).toBe('k');
    expect(num(msg.prevKv!.createRevision)).toBe(2);
    expect(num(msg.prevKv!.modRevision)).toBe(3);
    expect(num(msg.prevKv!.version)).toBe(1);
    expect(str(msg.prevKv!.value)).toBe('o');
    expect(hex(etcdserverpb.PutResponse.encode(msg).finish())).toBe(fixture);
  });

  it('DeleteRangeRequest/Response with prev_kv(s)', () => {
    expect(hex(etcdserverpb.DeleteRangeRequest.encode({ key: bytes('a'), rangeEnd: bytes('\0'), prevKv: true }).finish())).toBe(
      '0a 01 61 12 01 00 18 01',
    );
    const resp = etcdserverpb.DeleteRangeResponse.decode(unhex('10 02 1a 03 0a 01 61 1a 03 0a 01 62'));
    expect(resp.deleted.toNumber()).toBe(2);
    expect(resp.prevKvs.map((kv) => str(kv.key))).toEqual(['a', 'b']);
  });

  it('TxnRequest with a Compare on MOD/mod_revision and put/range branches', () => {
    const buf = etcdserverpb.TxnRequest.encode({
      compare: [
        {
          result: etcdserverpb.Compare.CompareResult.GREATER,
          target: etcdserverpb.Compare.CompareTarget.MOD,
          key: bytes('k'),
          modRevision: L(42),
        },
      ],
      success: [{ requestPut: { key: bytes('k'), value: bytes('v') } }],
      failure: [{ requestRange: { key: bytes('k') } }],
    }).finish();
    // compare(1) = 08 01 10 02 1a 01 6b 30 2a   (mod_revision is field 6 -> tag 0x30)
    // success(2) = RequestOp{request_put(2) = 0a 01 6b 12 01 76}
    // failure(3) = RequestOp{request_range(1) = 0a 01 6b}
    expect(hex(buf)).toBe('0a 09 08 01 10 02 1a 01 6b 30 2a 12 08 12 06 0a 01 6b 12 01 76 1a 05 0a 03 0a 01 6b');

    const back = etcdserverpb.TxnRequest.decode(buf);
    expect(back.compare[0].targetUnion).toBe('modRevision');
    expect(back.compare[0].modRevision!.toNumber()).toBe(42);
    expect(back.success[0].request).toBe('requestPut');
    expect(back.failure[0].request).toBe('requestRange');
  });

  it('Compare value target and range_end at field 64 (two-byte tag)', () => {
    const buf = etcdserverpb.Compare.encode({
      target: etcdserverpb.Compare.CompareTarget.VALUE,
      key: bytes('a'),
      value: bytes('x'),
      rangeEnd: bytes('b'),
    }).finish();
    // range_end: (64<<3)|2 = 514 -> varint 82 04
    expect(hex(buf)).toBe('10 03 1a 01 61 3a 01 78 82 04 01 62');
    // lease target (field 8, 3.3+) with NOT_EQUAL
    const lease = etcdserverpb.Compare.decode(unhex('08 03 10 04 1a 01 61 40 07'));
    expect(lease.result).toBe(etcdserverpb.Compare.CompareResult.NOT_EQUAL);
    expect(lease.target).toBe(etcdserverpb.Compare.CompareTarget.LEASE);
    expect(lease.targetUnion).toBe('lease');
    expect(lease.lease!.toNumber()).toBe(7);
  });

  it('TxnResponse with a nested response_txn (field 4 of ResponseOp)', () => {
    // responses[0] = ResponseOp{response_txn{succeeded:true}}
    const msg = etcdserverpb.TxnResponse.decode(unhex('10 01 1a 04 22 02 10 01'));
    expect(msg.succeeded).toBe(true);
    expect(msg.responses[0].response).toBe('responseTxn');
    expect(msg.responses[0].responseTxn!.succeeded).toBe(true);
  });

  it('CompactionRequest physical flag', () => {
    expect(hex(etcdserverpb.CompactionRequest.encode({ revision: L(100), physical: true }).finish())).toBe('08 64 10 01');
  });
});

describe('ResponseHeader 64-bit fields', () => {
  it('round-trips a uint64 cluster_id above 2^63 as an unsigned Long', () => {
    const fixture = '08 81 80 80 80 80 80 80 80 80 01 10 02 18 03 20 04';
    const h = etcdserverpb.ResponseHeader.decode(unhex(fixture));
    expect(Long.isLong(h.clusterId)).toBe(true);
    expect(h.clusterId.unsigned).toBe(true);
    expect(h.clusterId.toString()).toBe('9223372036854775809'); // 2^63 + 1
    expect(h.memberId.toNumber()).toBe(2);
    expect(h.revision.toNumber()).toBe(3);
    expect(h.raftTerm.toNumber()).toBe(4);
    expect(hex(etcdserverpb.ResponseHeader.encode(h).finish())).toBe(fixture);
  });

  it('encodes uint64 max as ten varint bytes', () => {
    const buf = etcdserverpb.ResponseHeader.encode({ clusterId: U('18446744073709551615') }).finish();
    expect(hex(buf)).toBe('08 ff ff ff ff ff ff ff ff ff 01');
    expect(etcdserverpb.ResponseHeader.decode(buf).clusterId.toString()).toBe('18446744073709551615');
  });
});

describe('Watch messages', () => {
  it('WatchRequest create_request with all 3.4 WatchCreateRequest fields', () => {
    const buf = etcdserverpb.WatchRequest.encode({
      createRequest: {
        key: bytes('foo'),
        rangeEnd: bytes('fop'),
        startRevision: L(10),
        progressNotify: true,
        filters: [etcdserverpb.WatchCreateRequest.FilterType.NODELETE],
        prevKv: true,
        watchId: L(7),
        fragment: true,
      },
    }).finish();
    // filters is a proto3 repeated enum -> packed: 2a 01 01
    expect(hex(buf)).toBe('0a 17 0a 03 66 6f 6f 12 03 66 6f 70 18 0a 20 01 2a 01 01 30 01 38 07 40 01');
    const back = etcdserverpb.WatchRequest.decode(buf);
    expect(back.requestUnion).toBe('createRequest');
    expect(num(back.createRequest!.watchId)).toBe(7);
  });

  it('accepts unpacked filters too (field 5 as a plain varint)', () => {
    const w = etcdserverpb.WatchCreateRequest.decode(unhex('0a 01 61 28 00 28 01'));
    expect(w.filters).toEqual([etcdserverpb.WatchCreateRequest.FilterType.NOPUT, etcdserverpb.WatchCreateRequest.FilterType.NODELETE]);
  });

  it('WatchRequest cancel_request and progress_request', () => {
    expect(hex(etcdserverpb.WatchRequest.encode({ cancelRequest: { watchId: L(7) } }).finish())).toBe('12 02 08 07');
    expect(hex(etcdserverpb.WatchRequest.encode({ progressRequest: {} }).finish())).toBe('1a 00');
    expect(etcdserverpb.WatchRequest.decode(unhex('1a 00')).requestUnion).toBe('progressRequest');
  });

  it('WatchResponse with compact_revision, cancel_reason, fragment and events (field 11)', () => {
    const fixture = '0a 02 18 05 10 01 28 03 32 02 6f 6b 38 01 5a 09 08 01 12 05 0a 01 61 18 05';
    const msg = etcdserverpb.WatchResponse.decode(unhex(fixture));
    expect(num(msg.header!.revision)).toBe(5);
    expect(msg.watchId.toNumber()).toBe(1);
    expect(msg.compactRevision.toNumber()).toBe(3);
    expect(msg.cancelReason).toBe('ok');
    expect(msg.fragment).toBe(true);
    expect(msg.events).toHaveLength(1);
    expect(msg.events[0].type).toBe(mvccpb.Event.EventType.DELETE);
    expect(str(msg.events[0].kv!.key)).toBe('a');
    expect(num(msg.events[0].kv!.modRevision)).toBe(5);
    expect(hex(etcdserverpb.WatchResponse.encode(msg).finish())).toBe(fixture);
  });

  it('Event prev_kv is field 3', () => {
    const ev = mvccpb.Event.decode(unhex('12 03 0a 01 61 1a 05 0a 01 61 30 09'));
    expect(ev.type).toBe(mvccpb.Event.EventType.PUT);
    expect(num(ev.prevKv!.lease)).toBe(9);
  });
});

describe('Lease messages', () => {
  it('LeaseGrantRequest / LeaseGrantResponse use TTL=1/ID=2 and ID=2/TTL=3', () => {
    expect(hex(etcdserverpb.LeaseGrantRequest.encode({ TTL: L(60), ID: L(0x1234) }).finish())).toBe('08 3c 10 b4 24');
    const r = etcdserverpb.LeaseGrantResponse.decode(unhex('10 b4 24 18 3c 22 01 65'));
    expect(r.ID.toNumber()).toBe(0x1234);
    expect(r.TTL.toNumber()).toBe(60);
    expect(r.error).toBe('e');
  });

  it('negative int64 TTL (-1) is a ten-byte varint', () => {
    const fixture = '10 05 18 ff ff ff ff ff ff ff ff ff 01 20 0a 2a 01 6b';
    const r = etcdserverpb.LeaseTimeToLiveResponse.decode(unhex(fixture));
    expect(r.ID.toNumber()).toBe(5);
    expect(r.TTL.toNumber()).toBe(-1);
    expect(r.grantedTTL.toNumber()).toBe(10);
    expect(r.keys.map(str)).toEqual(['k']);
    expect(hex(etcdserverpb.LeaseTimeToLiveResponse.encode(r).finish())).toBe(fixture);
  });

  it('LeaseLeasesResponse and LeaseCheckpointRequest', () => {
    const r = etcdserverpb.LeaseLeasesResponse.decode(unhex('12 02 08 01 12 02 08 02'));
    expect(r.leases.map((l) => num(l.ID))).toEqual([1, 2]);
    expect(hex(etcdserverpb.LeaseCheckpointRequest.encode({ checkpoints: [{ ID: L(1), remaining_TTL: L(30) }] }).finish())).toBe(
      '0a 04 08 01 10 1e',
    );
  });
});

describe('Cluster, Maintenance, Auth messages', () => {
  it('Member/MemberAddRequest with isLearner; MemberPromoteRequest', () => {
    expect(hex(etcdserverpb.MemberAddRequest.encode({ peerURLs: ['u'], isLearner: true }).finish())).toBe('0a 01 75 10 01');
    const m = etcdserverpb.Member.decode(unhex('08 01 12 01 6e 1a 01 70 22 01 63 28 01'));
    expect(m.ID.toNumber()).toBe(1);
    expect(m.name).toBe('n');
    expect(m.peerURLs).toEqual(['p']);
    expect(m.clientURLs).toEqual(['c']);
    expect(m.isLearner).toBe(true);
    expect(hex(etcdserverpb.MemberPromoteRequest.encode({ ID: U('9223372036854775809') }).finish())).toBe('08 81 80 80 80 80 80 80 80 80 01');
  });

  it('StatusResponse 3.4 fields (raftAppliedIndex, errors, dbSizeInUse, isLearner)', () => {
    const buf = etcdserverpb.StatusResponse.encode({
      version: '3.4.0',
      dbSize: L(4096),
      raftAppliedIndex: U('9'),
      errors: ['x'],
      dbSizeInUse: L(2048),
      isLearner: true,
    }).finish();
    expect(hex(buf)).toBe('12 05 33 2e 34 2e 30 18 80 20 38 09 42 01 78 48 80 10 50 01');
  });

  it('AlarmRequest and AlarmType values', () => {
    const buf = etcdserverpb.AlarmRequest.encode({
      action: etcdserverpb.AlarmRequest.AlarmAction.ACTIVATE,
      memberID: U('1'),
      alarm: etcdserverpb.AlarmType.NOSPACE,
    }).finish();
    expect(hex(buf)).toBe('08 01 10 01 18 01');
    expect(etcdserverpb.AlarmType.CORRUPT).toBe(2);
    const resp = etcdserverpb.AlarmResponse.decode(unhex('12 04 08 07 10 02'));
    expect(num(resp.alarms[0].memberID)).toBe(7);
    expect(resp.alarms[0].alarm).toBe(etcdserverpb.AlarmType.CORRUPT);
  });

  it('SnapshotResponse, HashKVResponse, MoveLeaderRequest', () => {
    const s = etcdserverpb.SnapshotResponse.decode(unhex('10 80 01 1a 02 ab cd'));
    expect(s.remainingBytes.toNumber()).toBe(128);
    expect(hex(s.blob)).toBe('ab cd');
    const h = etcdserverpb.HashKVResponse.decode(unhex('10 ff ff ff ff 0f 18 04'));
    expect(h.hash).toBe(0xffffffff);
    expect(h.compactRevision.toNumber()).toBe(4);
    expect(hex(etcdserverpb.MoveLeaderRequest.encode({ targetID: U('2') }).finish())).toBe('08 02');
  });

  it('Auth requests: user add options, role grant permission, revoke with bytes key', () => {
    expect(hex(etcdserverpb.AuthUserAddRequest.encode({ name: 'u', password: 'p', options: { noPassword: true } }).finish())).toBe(
      '0a 01 75 12 01 70 1a 02 08 01',
    );
    expect(
      hex(
        etcdserverpb.AuthRoleGrantPermissionRequest.encode({
          name: 'r',
          perm: { permType: authpb.Permission.Type.READWRITE, key: bytes('a'), rangeEnd: bytes('b') },
        }).finish(),
      ),
    ).toBe('0a 01 72 12 08 08 02 12 01 61 1a 01 62');
    expect(hex(etcdserverpb.AuthUserGrantRoleRequest.encode({ user: 'u', role: 'r' }).finish())).toBe('0a 01 75 12 01 72');
    const rv = etcdserverpb.AuthRoleRevokePermissionRequest.decode(unhex('0a 01 72 12 01 ff 1a 01 00'));
    expect(rv.role).toBe('r');
    expect(hex(rv.key)).toBe('ff'); // not valid UTF-8: must be bytes, not string
    const get = etcdserverpb.AuthRoleGetResponse.decode(unhex('12 05 08 01 12 01 61'));
    expect(get.perm[0].permType).toBe(authpb.Permission.Type.WRITE);
    expect(etcdserverpb.AuthenticateResponse.decode(unhex('12 03 74 6f 6b')).token).toBe('tok');
  });

  it('tolerates fields added after 3.4 as unknown fields', () => {
    // MemberListRequest.linearizable (3.5) = field 1
    expect(() => etcdserverpb.MemberListRequest.decode(unhex('08 01'))).not.toThrow();
    // StatusResponse.storageVersion (3.6) = field 11 string
    expect(etcdserverpb.StatusResponse.decode(unhex('12 01 33 5a 01 33')).version).toBe('3');
  });
});

describe('lock and election', () => {
  it('LockRequest / LockResponse', () => {
    expect(hex(v3lockpb.LockRequest.encode({ name: bytes('l'), lease: L(5) }).finish())).toBe('0a 01 6c 10 05');
    expect(str(v3lockpb.LockResponse.decode(unhex('0a 02 18 01 12 03 6c 2f 31')).key)).toBe('l/1');
  });

  it('ProclaimRequest with LeaderKey; LeaderResponse kv', () => {
    const buf = v3electionpb.ProclaimRequest.encode({
      leader: { name: bytes('e'), key: bytes('e/1'), rev: L(9), lease: L(5) },
      value: bytes('v'),
    }).finish();
    expect(hex(buf)).toBe('0a 0c 0a 01 65 12 03 65 2f 31 18 09 20 05 12 01 76');
    const lr = v3electionpb.LeaderResponse.decode(unhex('12 06 0a 01 65 2a 01 76'));
    expect(str(lr.kv!.value)).toBe('v');
  });
});

describe('enums, services and method paths', () => {
  it('enum values match etcd', () => {
    expect(etcdserverpb.RangeRequest.SortOrder.NONE).toBe(0);
    expect(etcdserverpb.RangeRequest.SortTarget.VALUE).toBe(4);
    expect(etcdserverpb.Compare.CompareTarget.MOD).toBe(2);
    expect(etcdserverpb.Compare.CompareResult.LESS).toBe(2);
    expect(etcdserverpb.WatchCreateRequest.FilterType.NOPUT).toBe(0);
    expect(etcdserverpb.AlarmRequest.AlarmAction.DEACTIVATE).toBe(2);
    expect(mvccpb.Event.EventType.DELETE).toBe(1);
    expect(authpb.Permission.Type.READWRITE).toBe(2);
  });

  it('unary method paths', () => {
    expect(etcdserverpb.KV.prototype.range.path).toBe('/etcdserverpb.KV/Range');
    expect(etcdserverpb.KV.prototype.txn.path).toBe('/etcdserverpb.KV/Txn');
    expect(etcdserverpb.KV.prototype.compact.path).toBe('/etcdserverpb.KV/Compact');
    expect(etcdserverpb.Lease.prototype.leaseGrant.path).toBe('/etcdserverpb.Lease/LeaseGrant');
    expect(etcdserverpb.Lease.prototype.leaseTimeToLive.path).toBe('/etcdserverpb.Lease/LeaseTimeToLive');
    expect(etcdserverpb.Cluster.prototype.memberPromote.path).toBe('/etcdserverpb.Cluster/MemberPromote');
    expect(etcdserverpb.Maintenance.prototype.hashKV.path).toBe('/etcdserverpb.Maintenance/HashKV');
    expect(etcdserverpb.Maintenance.prototype.moveLeader.path).toBe('/etcdserverpb.Maintenance/MoveLeader');
    expect(etcdserverpb.Auth.prototype.userChangePassword.path).toBe('/etcdserverpb.Auth/UserChangePassword');
    expect(v3lockpb.Lock.prototype.unlock.path).toBe('/v3lockpb.Lock/Unlock');
    expect(v3electionpb.Election.prototype.campaign.path).toBe('/v3electionpb.Election/Campaign');
  });

  it('streaming flags', () => {
    const watch = etcdserverpb.Watch.prototype.watch;
    expect([watch.path, watch.requestStream, watch.responseStream]).toEqual(['/etcdserverpb.Watch/Watch', true, true]);
    const ka = etcdserverpb.Lease.prototype.leaseKeepAlive;
    expect([ka.path, ka.requestStream, ka.responseStream]).toEqual(['/etcdserverpb.Lease/LeaseKeepAlive', true, true]);
    const snap = etcdserverpb.Maintenance.prototype.snapshot;
    expect([snap.path, snap.requestStream, snap.responseStream]).toEqual(['/etcdserverpb.Maintenance/Snapshot', undefined, true]);
    const obs = v3electionpb.Election.prototype.observe;
    expect([obs.path, obs.requestStream, obs.responseStream]).toEqual(['/v3electionpb.Election/Observe', undefined, true]);
    expect(etcdserverpb.KV.prototype.range.requestStream).toBeUndefined();
  });

  it('3.5+ additions are absent', () => {
    const ns = etcdserverpb as unknown as Record<string, unknown>;
    expect(ns.DowngradeRequest).toBeUndefined();
    expect(ns.AuthStatusRequest).toBeUndefined();
    expect((etcdserverpb.Auth.prototype as unknown as Record<string, unknown>).authStatus).toBeUndefined();
    expect((etcdserverpb.Maintenance.prototype as unknown as Record<string, unknown>).downgrade).toBeUndefined();
  });
});
