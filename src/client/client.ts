import * as M from './methods';
import { toLong, type KeyLike } from './convert';
import {
  TxnBuilder,
  deleteRequest,
  deleteResult,
  getResult,
  putRequest,
  putResult,
  rangeRequest,
  type CompactOptions,
  type DeleteQuery,
  type DeleteResult,
  type GetQuery,
  type GetResult,
  type PutOptions,
  type PutResult,
} from './kv';
import { header, type ResponseHeader } from './convert';
import { AuthClient } from './auth';
import { Pool, type CallOptions, type Credentials, type TlsOptions } from './pool';
import { ClusterClient, MaintenanceClient } from './cluster';
import { LeaseClient } from './lease';
import { WatchHub, type Watcher, type WatchOptions } from './watch';
import { ConfigWatcher, type ConfigOptions } from './config';

export interface ClientOptions {
  /** e.g. ['http://127.0.0.1:2379', 'http://127.0.0.1:22379'] */
  endpoints: string[];
  /** How long to wait for a connection to one endpoint before trying the next (default 2000). */
  dialTimeoutMs?: number;
  /** Default deadline of every call, failover and retries included (default 10000). */
  requestTimeoutMs?: number;
  /** Authenticate as this user; the token goes with every call and is renewed when the server rejects it. */
  credentials?: Credentials;
  /** TLS for https:// endpoints (and for endpoints without a scheme): CA, client certificate, key. */
  tls?: TlsOptions;
}

const DEFAULT_DIAL_TIMEOUT_MS = 2_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** A client of an etcd v3 (or cairn) cluster. */
export class Client {
  /** @internal */
  readonly pool: Pool;
  private readonly closeHooks: Array<() => void> = [];

  private readonly watchHub: WatchHub;
  /** Leases: grant, revoke, timeToLive, leases, keepAlive. */
  readonly lease: LeaseClient;
  /** Membership: memberList, memberAdd, memberRemove, memberUpdate, memberPromote. */
  readonly cluster: ClusterClient;
  /** status, hashKV, alarm, defragment, moveLeader, snapshot. */
  readonly maintenance: MaintenanceClient;
  /** Authentication: enable/disable, users, roles, permissions. */
  readonly auth: AuthClient;

  constructor(opts: ClientOptions) {
    this.pool = new Pool(opts.endpoints, opts.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS, opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, {
      tls: opts.tls,
      credentials: opts.credentials,
    });
    this.watchHub = new WatchHub(this.pool);
    this.onClose(() => this.watchHub.close());
    this.lease = new LeaseClient(this.pool);
    this.onClose(() => this.lease.hub.close());
    this.cluster = new ClusterClient(this.pool);
    this.maintenance = new MaintenanceClient(this.pool);
    this.auth = new AuthClient(this.pool);
  }

  /**
   * Watch a key or range: `for await (const batch of client.watch({ key: 'dir/', prefix: true }))`.
   * `await w.ready` before writing if the watch must see the write.
   */
  watch(opts: WatchOptions): Watcher {
    return this.watchHub.watch(opts);
  }

  /**
   * A live, typed view of every key under `prefix` (JSON values by default), resolved once
   * the initial read is applied: `const cfg = await client.config<Settings>('/services/api/')`.
   * See ConfigWatcher.
   */
  config<T = unknown>(prefix: string, opts?: ConfigOptions<T>): Promise<ConfigWatcher<T>> {
    return ConfigWatcher.open(this, prefix, opts);
  }

  /** The endpoint calls go to now. */
  get activeEndpoint(): string {
    return this.pool.current().url;
  }

  /** Read one key, or a range (see GetQuery). */
  async get(q: KeyLike | GetQuery, opts?: CallOptions): Promise<GetResult> {
    return getResult(await this.pool.unary(M.KV.Range, rangeRequest(q), opts));
  }

  /** The value of one key as a string, or null if it does not exist. */
  async getString(key: KeyLike, opts?: CallOptions): Promise<string | null> {
    const r = await this.get(key, opts);
    return r.kvs.length === 0 ? null : r.kvs[0].valueString();
  }

  async put(key: KeyLike, value: KeyLike, opts?: PutOptions & CallOptions): Promise<PutResult> {
    return putResult(await this.pool.unary(M.KV.Put, putRequest(key, value, opts), opts));
  }

  async delete(q: KeyLike | DeleteQuery, opts?: CallOptions): Promise<DeleteResult> {
    return deleteResult(await this.pool.unary(M.KV.DeleteRange, deleteRequest(q), opts));
  }

  /** Drop the history before `revision`. */
  async compact(revision: number, opts?: CompactOptions & CallOptions): Promise<{ header: ResponseHeader }> {
    const r = await this.pool.unary(M.KV.Compact, { revision: toLong(revision), physical: opts?.physical === true }, opts);
    return { header: header(r.header) };
  }

  /** A transaction: `client.txn().if(...).then(...).else(...).commit()`. */
  txn(): TxnBuilder {
    return new TxnBuilder(this.pool);
  }

  /** @internal Run fn when the client closes. */
  onClose(fn: () => void): void {
    this.closeHooks.push(fn);
  }

  /** Stop watches and keep-alives and close every connection. */
  close(): void {
    if (this.pool.isClosed) return;
    for (const fn of this.closeHooks.splice(0)) fn();
    this.pool.close();
  }
}
