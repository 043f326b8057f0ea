/**
 * cairn's TypeScript client for etcd v3 API servers (cairn and etcd).
 *
 *   const client = new Client({ endpoints: ['http://127.0.0.1:2379', 'http://127.0.0.1:22379'] });
 *   await client.put('k', 'v');
 *   const { kvs } = await client.get({ key: 'dir/', prefix: true }, { timeoutMs: 2000 });
 *   const r = await client.txn().if(compare.value('k', '=', 'v')).then(op.put('k', 'v2')).else(op.get('k')).commit();
 *   for await (const batch of client.watch({ key: 'dir/', prefix: true })) { ... }
 *   const lease = await client.lease.grant(10, { keepAlive: true }); lease.keepAlive.onLost(...);
 *   client.close();
 *
 * Calls fail over between endpoints; reads (and other repeatable calls) are retried,
 * writes only when the failure proves they were not applied. Errors are EtcdError
 * subclasses chosen from etcd's messages. Revisions are numbers, IDs bigint.
 */
export { Client, type ClientOptions } from './client';
export { KeyValue, type KeyLike, type ResponseHeader } from './convert';
export * from './errors';
export { ConnectFailedError, type CallOptions, type Credentials, type TlsOptions } from './pool';
export { AuthClient, type AuthHeaderResult, type Permission, type PermissionType } from './auth';
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
export * from './config';
export { Watcher, type WatchBatch, type WatchEvent, type WatchFilter, type WatchOptions } from './watch';
export { LeaseClient, LeaseExpiredError, LeaseKeepAlive, type LeaseGrant, type LeaseGrantOptions, type LeaseTimeToLive } from './lease';
export { ClusterClient, MaintenanceClient, type Alarm, type AlarmType, type Member, type MemberCallOptions, type MemberList, type MemberStatus } from './cluster';
export * from './concurrency';
