import { etcdserverpb } from '../gen/proto';

// Client-side method descriptors: etcd's wire paths with the generated encoders.

interface MessageType<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(reader: Uint8Array): T;
}

export interface Method<Req, Res> {
  readonly path: string;
  /** Safe to send again after a failure that may have reached the server (etcd clientv3's "repeatable"). */
  readonly idempotent: boolean;
  readonly serialize: (m: Req) => Buffer;
  readonly deserialize: (b: Buffer) => Res;
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function m<Req, Res>(path: string, idempotent: boolean, req: MessageType<Req>, res: MessageType<Res>): Method<Req, Res> {
  return {
    path,
    idempotent,
    serialize: (x: Req) => toBuffer(req.encode(x).finish()),
    deserialize: (b: Buffer) => res.decode(b),
  };
}

const pb = etcdserverpb;
// Response types are what decode returns; typed as the all-optional $Properties so that
// every read handles absent fields.
export type RangeRequest = etcdserverpb.RangeRequest.$Properties;
export type RangeResponse = etcdserverpb.RangeResponse.$Properties;
export type PutRequest = etcdserverpb.PutRequest.$Properties;
export type PutResponse = etcdserverpb.PutResponse.$Properties;
export type DeleteRangeRequest = etcdserverpb.DeleteRangeRequest.$Properties;
export type DeleteRangeResponse = etcdserverpb.DeleteRangeResponse.$Properties;
export type TxnRequest = etcdserverpb.TxnRequest.$Properties;
export type TxnResponse = etcdserverpb.TxnResponse.$Properties;
export type RequestOp = etcdserverpb.RequestOp.$Properties;
export type ResponseOp = etcdserverpb.ResponseOp.$Properties;
export type Compare = etcdserverpb.Compare.$Properties;
export type WatchRequest = etcdserverpb.WatchRequest.$Properties;
export type WatchResponse = etcdserverpb.WatchResponse.$Properties;
export type LeaseKeepAliveRequest = etcdserverpb.LeaseKeepAliveRequest.$Properties;
export type LeaseKeepAliveResponse = etcdserverpb.LeaseKeepAliveResponse.$Properties;
export type Member = etcdserverpb.Member.$Properties;
export type SnapshotResponse = etcdserverpb.SnapshotResponse.$Properties;

export const KV = {
  Range: m<RangeRequest, RangeResponse>('/etcdserverpb.KV/Range', true, pb.RangeRequest, pb.RangeResponse),
  Put: m<PutRequest, PutResponse>('/etcdserverpb.KV/Put', false, pb.PutRequest, pb.PutResponse),
  DeleteRange: m<DeleteRangeRequest, DeleteRangeResponse>('/etcdserverpb.KV/DeleteRange', false, pb.DeleteRangeRequest, pb.DeleteRangeResponse),
  /** Idempotence of a Txn depends on its ops: decided per call. */
  Txn: m<TxnRequest, TxnResponse>('/etcdserverpb.KV/Txn', false, pb.TxnRequest, pb.TxnResponse),
  Compact: m<etcdserverpb.CompactionRequest.$Properties, etcdserverpb.CompactionResponse.$Properties>(
    '/etcdserverpb.KV/Compact', true, pb.CompactionRequest, pb.CompactionResponse),
};

export const Watch = {
  Watch: m<WatchRequest, WatchResponse>('/etcdserverpb.Watch/Watch', true, pb.WatchRequest, pb.WatchResponse),
};

export const Lease = {
  LeaseGrant: m<etcdserverpb.LeaseGrantRequest.$Properties, etcdserverpb.LeaseGrantResponse.$Properties>(
    '/etcdserverpb.Lease/LeaseGrant', false, pb.LeaseGrantRequest, pb.LeaseGrantResponse),
  LeaseRevoke: m<etcdserverpb.LeaseRevokeRequest.$Properties, etcdserverpb.LeaseRevokeResponse.$Properties>(
    '/etcdserverpb.Lease/LeaseRevoke', true, pb.LeaseRevokeRequest, pb.LeaseRevokeResponse),
  LeaseKeepAlive: m<LeaseKeepAliveRequest, LeaseKeepAliveResponse>(
    '/etcdserverpb.Lease/LeaseKeepAlive', true, pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse),
  LeaseTimeToLive: m<etcdserverpb.LeaseTimeToLiveRequest.$Properties, etcdserverpb.LeaseTimeToLiveResponse.$Properties>(
    '/etcdserverpb.Lease/LeaseTimeToLive', true, pb.LeaseTimeToLiveRequest, pb.LeaseTimeToLiveResponse),
  LeaseLeases: m<etcdserverpb.LeaseLeasesRequest.$Properties, etcdserverpb.LeaseLeasesResponse.$Properties>(
    '/etcdserverpb.Lease/LeaseLeases', true, pb.LeaseLeasesRequest, pb.LeaseLeasesResponse),
};

export const Cluster = {
  MemberAdd: m<etcdserverpb.MemberAddRequest.$Properties, etcdserverpb.MemberAddResponse.$Properties>(
    '/etcdserverpb.Cluster/MemberAdd', false, pb.MemberAddRequest, pb.MemberAddResponse),
  MemberRemove: m<etcdserverpb.MemberRemoveRequest.$Properties, etcdserverpb.MemberRemoveResponse.$Properties>(
    '/etcdserverpb.Cluster/MemberRemove', false, pb.MemberRemoveRequest, pb.MemberRemoveResponse),
  MemberUpdate: m<etcdserverpb.MemberUpdateRequest.$Properties, etcdserverpb.MemberUpdateResponse.$Properties>(
    '/etcdserverpb.Cluster/MemberUpdate', false, pb.MemberUpdateRequest, pb.MemberUpdateResponse),
  MemberList: m<etcdserverpb.MemberListRequest.$Properties, etcdserverpb.MemberListResponse.$Properties>(
    '/etcdserverpb.Cluster/MemberList', true, pb.MemberListRequest, pb.MemberListResponse),
  MemberPromote: m<etcdserverpb.MemberPromoteRequest.$Properties, etcdserverpb.MemberPromoteResponse.$Properties>(
    '/etcdserverpb.Cluster/MemberPromote', false, pb.MemberPromoteRequest, pb.MemberPromoteResponse),
};

export const Maintenance = {
  Alarm: m<etcdserverpb.AlarmRequest.$Properties, etcdserverpb.AlarmResponse.$Properties>(
    '/etcdserverpb.Maintenance/Alarm', false, pb.AlarmRequest, pb.AlarmResponse),
  Status: m<etcdserverpb.StatusRequest.$Properties, etcdserverpb.StatusResponse.$Properties>(
    '/etcdserverpb.Maintenance/Status', true, pb.StatusRequest, pb.StatusResponse),
  Defragment: m<etcdserverpb.DefragmentRequest.$Properties, etcdserverpb.DefragmentResponse.$Properties>(
    '/etcdserverpb.Maintenance/Defragment', false, pb.DefragmentRequest, pb.DefragmentResponse),
  Hash: m<etcdserverpb.HashRequest.$Properties, etcdserverpb.HashResponse.$Properties>(
    '/etcdserverpb.Maintenance/Hash', true, pb.HashRequest, pb.HashResponse),
  HashKV: m<etcdserverpb.HashKVRequest.$Properties, etcdserverpb.HashKVResponse.$Properties>(
    '/etcdserverpb.Maintenance/HashKV', true, pb.HashKVRequest, pb.HashKVResponse),
  Snapshot: m<etcdserverpb.SnapshotRequest.$Properties, SnapshotResponse>(
    '/etcdserverpb.Maintenance/Snapshot', true, pb.SnapshotRequest, pb.SnapshotResponse),
  MoveLeader: m<etcdserverpb.MoveLeaderRequest.$Properties, etcdserverpb.MoveLeaderResponse.$Properties>(
    '/etcdserverpb.Maintenance/MoveLeader', false, pb.MoveLeaderRequest, pb.MoveLeaderResponse),
};
