// cairn's TypeScript client for etcd v3 API servers (cairn and etcd).
export { Client, type ClientOptions } from './client';
export { KeyValue, type KeyLike, type ResponseHeader } from './convert';
export * from './errors';
export { ConnectFailedError, type CallOptions } from './pool';
export {
  compare,
  op,
  TxnBuilder,
  type CompactOptions,
  type CompareOp,
  type Comparison,
  type DeleteQuery,
  type DeleteResult,
  type GetQuery,
  type GetResult,
  type KeyRange,
  type Operation,
  type PutOptions,
  type PutResult,
  type SortOrder,
  type SortTarget,
  type TxnOpResult,
  type TxnResult,
} from './kv';
export { Watcher, type WatchBatch, type WatchEvent, type WatchFilter, type WatchOptions } from './watch';
export { LeaseClient, LeaseExpiredError, LeaseKeepAlive, type LeaseGrant, type LeaseGrantOptions, type LeaseTimeToLive } from './lease';
export { ClusterClient, MaintenanceClient, type Alarm, type AlarmType, type Member, type MemberCallOptions, type MemberList, type MemberStatus } from './cluster';
