import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { cairnpb, etcdserverpb } from '../gen/proto';
import { LEASE_TTL_MAX_SECONDS, Lease, LeaseExistsError, LeaseNotFoundError, Lessor } from '../lease/lessor';
import { Backend } from '../mvcc/backend';
import { MvccStore } from '../mvcc/store';
import { WatchHub } from '../mvcc/watch-hub';
import { Wal } from '../wal/wal';
import {
  TxnExecutor,
  applyDeleteRange,
  applyPut,
  checkPut,
  isTxnReadOnly,
  isTxnSerializable,
  mvccError,
  mvccRangeOptions,
  rangeEnd,
  rangeResponse,
} from './apply';
import { ETCD_API_VERSION } from '../version';
import { QUOTA_BACKEND_BYTES_DEFAULT, ServerConfig } from './config';
import { asBuffer, int64, toBigInt, toNumber, uint64 } from './convert';
import { Errors, EtcdError } from './errors';
import { MEMBER_ADD_TOKEN, RequestIdGenerator, computeClusterId, computeMemberId, idToHex } from './ids';
import { Alarm, AlarmType, Alarms } from './alarms';
import { LeaseExpiry } from './lease-expiry';
import { loadSnapshotFile, receiveSnapshotFile, snapshotChunks } from './snapshot';
import { CommittedEntry, LocalLog } from './local-log';
import { ClusterMember, decodeMemberMeta, encodeMemberMeta, MemberMeta, parseInitialCluster } from './member-meta';
import { PeerTransport, peerSockets } from '../peer';
import { peerTls } from './peer-tls';
import { PeerEnvelope, RaftLog, withEnvelope } from './raft-log';
import { Member, Membership } from './membership';
import { ConfChangeType } from '../raft';
import type { ReplicatedLog } from './replicated-log';
import bcrypt from 'bcryptjs';
import { AuthStore, AuthInfo, Caller, INTERNAL } from '../auth/store';
import { AuthErrors } from '../auth/errors';
import { JwtTokens, SimpleTokens, TokenProvider, newSimpleToken, parseAuthToken } from '../auth/tokens';
import { durationMs } from '../bin/flags';

// One cairn member: the WAL-backed log, the apply loop into mvcc, and the request paths the
// API layer calls. Every mutation is proposed as a log entry, acknowledged only after it is
// durable and applied; reads wait until everything committed before them is applied.

/** etcd refuses new proposals when apply falls this far behind commit. */
const APPLY_GAP_MAX = 5000;
/** Entries a clustered member keeps behind a snapshot for followers a little behind (etcd: 5000). */
const SNAPSHOT_CATCHUP_ENTRIES = 5000;
/** Apply batches arriving within this window share one LevelDB batch. */
const BACKEND_COMMIT_DELAY_MS = 10;
/** A renewal forwarded to the leader fails after this long. */
const LEASE_RENEW_TIMEOUT_MS = 1000;
/** Members re-announce their client URLs this often. */
const ANNOUNCE_INTERVAL_MS = 2000;
/** Force LevelDB to disk and release WAL segments after this many applied entries. */
const RELEASE_EVERY_ENTRIES = 10_000;

interface Waiter {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  deadline: number;
  /** The proposed entry's bytes, to forget the request if the entry never comes back. */
  entry: Buffer;
  /** The request the entry carries, applied as it is when the entry comes back (not decoded again). */
  req?: cairnpb.IInternalRequest;
}

/** etcd's request timeout: 5 s plus two election timeouts. */
function requestTimeoutMs(c: ServerConfig): number {
  return 5000 + 2 * c.electionTimeoutMs;
}

/**
 * --force-new-cluster: this member's data becomes a one-member cluster (etcd's recovery
 * when a quorum is lost for good). The store keeps everything applied; the WAL is set
 * aside (renamed, not deleted) and a new one starts at the applied index with this member
 * alone. Entries the old WAL held beyond what was applied are not kept: etcd's force also
 * keeps only what this member had committed.
 */
async function forceNewCluster(
  config: ServerConfig,
  walDir: string,
  old: Wal,
  contents: Awaited<ReturnType<typeof Wal.open>>['contents'],
  meta: MemberMeta,
  log: Logger,
): Promise<{ wal: Wal; contents: Awaited<ReturnType<typeof Wal.open>>['contents']; meta: MemberMeta }> {
  const backend = await Backend.open(join(config.dataDir, 'member', 'db'), (err) => fatal(log, err, 'backend failed'));
  const store = await MvccStore.open(backend);
  const applied = store.consistentIndex;
  const membership = new Membership(backend);
  await membership.load(meta.members);
  for (const m of membership.list()) if (m.id !== meta.memberId) membership.remove(m.id);
  await backend.sync();
  await backend.close();
  await old.close();
  const term = contents.hardState?.term ?? 1;
  const aside = `${walDir}.before-force-new-cluster.${Date.now()}`;
  await rename(walDir, aside);
  const self = meta.members.find((m) => m.id === meta.memberId) ?? { id: meta.memberId, name: meta.name, peerUrls: config.initialAdvertisePeerUrls };
  const single: MemberMeta = { ...meta, members: [self] };
  const { wal } = await Wal.open(walDir);
  wal.appendMetadata(encodeMemberMeta(single));
  wal.appendSnapshotMark({ index: applied, term });
  wal.appendHardState({ term, vote: meta.memberId, commit: applied });
  await wal.sync();
  log.warn({ applied_index: applied, old_wal: aside, removed_members: meta.members.filter((m) => m.id !== meta.memberId).map((m) => m.name) }, 'forced a new one-member cluster from this member\'s data');
  await wal.close();
  const reopened = await Wal.open(walDir);
  return { wal: reopened.wal, contents: reopened.contents, meta: single };
}

const EMPTY_ENTRY = Buffer.alloc(0);
/** A client with no credentials (or any client while auth is off). */
const NOBODY: AuthInfo = Object.freeze({ username: '', revision: 0 });

function validPeerUrl(u: string): boolean {
  try {
    return ['http:', 'https:', 'unix:', 'unixs:'].includes(new URL(u).protocol);
  } catch {
    return false;
  }
}

/**
 * The identity of a member joining a running cluster (--initial-cluster-state existing): its
 * ID is derived from its peer URLs as `member add` derived it; the cluster ID is learned from
 * the first member that dials in.
 */
function joinMeta(config: ServerConfig): MemberMeta {
  const memberId = 0n; // named by the first member that dials in (member add chose it)
  const members: ClusterMember[] = parseInitialCluster(config.initialCluster).map((m) => ({
    id: m.name === config.name ? memberId : computeMemberId(m.peerUrls, config.initialClusterToken),
    name: m.name,
    peerUrls: m.peerUrls,
  }));
  if (!members.some((m) => m.name === config.name)) throw new Error(`couldn't find local name "${config.name}" in the initial cluster configuration`);
  return { memberId, clusterId: 0n, name: config.name, members };
}

/** The identity of a member starting on an empty data dir, derived from its flags as etcd does. */
function bootstrapMeta(config: ServerConfig): MemberMeta {
  const members: ClusterMember[] = parseInitialCluster(config.initialCluster).map((m) => ({
    id: computeMemberId(m.peerUrls, config.initialClusterToken),
    name: m.name,
    peerUrls: m.peerUrls,
  }));
  const self = members.find((m) => m.name === config.name);
  if (self === undefined) throw new Error(`couldn't find local name "${config.name}" in the initial cluster configuration`);
  const selfUrls = [...config.initialAdvertisePeerUrls].sort().join(',');
  if ([...self.peerUrls].sort().join(',') !== selfUrls) {
    throw new Error(`--initial-cluster has ${self.name}=${self.peerUrls.join(',')} but --initial-advertise-peer-urls is ${config.initialAdvertisePeerUrls.join(',')}: they must match`);
  }
  return { memberId: self.id, clusterId: computeClusterId(members.map((m) => m.id)), name: config.name, members };
}

export interface ServerCounters {
  proposalsCommitted: number;
  proposalsApplied: number;
  proposalsFailed: number;
}

export class CairnServer {
  /** Proposals of this member waiting for their entry, by RequestIdGenerator.ownKey of their ID. */
  private readonly waiters = new Map<number, Waiter>();
  private readonly clusterIdWire: ReturnType<typeof uint64>;
  private readonly memberIdWire: ReturnType<typeof uint64>;
  private readonly appliedWaiters: Array<{ index: number; resolve: () => void }> = [];
  private applyQueue: CommittedEntry[] = [];
  private applying = false;
  private installing = false;
  private snapshotting = false;
  private snapshotIndex = 0;
  private applied: number;
  private releasedAt: number;
  private stopping = false;
  private renewSeq = 0;
  private readonly renewals = new Map<number, { resolve: (ttl: number) => void; timer: NodeJS.Timeout }>();
  private readonly clientUrlsOf = new Map<bigint, string[]>();
  /** Names members announced: a member added by `member add` has none in the log until it starts. */
  private readonly namesOf = new Map<bigint, string>();
  private publishing = false;
  private readonly hashQueries = new Map<bigint, (a: { status: number; hash: number; compactRevision: number }) => void>();
  private announceTimer: NodeJS.Timeout | undefined;
  transport: PeerTransport | undefined;
  timeoutTimer: NodeJS.Timeout | undefined;
  private readonly txns: TxnExecutor;
  readonly watchHub: WatchHub;
  readonly leaseExpiry: LeaseExpiry;
  /** etcd's minimum lease TTL: 1.5 election timeouts, rounded up to whole seconds. */
  readonly leaseTtlMinSeconds: number;
  readonly counters: ServerCounters = { proposalsCommitted: 0, proposalsApplied: 0, proposalsFailed: 0 };
  readonly tokens: TokenProvider;
  private tokenSeq = 0;
  /** The WAL's last index at start: Authenticate entries up to it are replayed, and the
   *  tokens they carried died with the process (tokens live in memory only). */
  private tokenFloor = 0;

  private constructor(
    readonly config: ServerConfig,
    readonly log: Logger,
    readonly meta: MemberMeta,
    private readonly wal: Wal,
    private readonly backend: Backend,
    readonly store: MvccStore,
    readonly lessor: Lessor,
    readonly alarms: Alarms,
    readonly membership: Membership,
    readonly auth: AuthStore,
    private readonly raftLog: ReplicatedLog,
    private readonly ids: RequestIdGenerator,
  ) {
    const spec = parseAuthToken(config.authToken, config.authTokenTtlSeconds * 1000, (v) => durationMs(v, 'auth-token'));
    this.tokens = spec.kind === 'simple' ? new SimpleTokens(spec.ttlMs) : new JwtTokens(spec.options);
    auth.onUserInvalidated = (name) => this.tokens.invalidateUser(name);
    auth.onDisabled = () => this.tokens.clear();
    this.applied = store.consistentIndex;
    this.releasedAt = this.applied;
    this.clusterIdWire = uint64(meta.clusterId);
    this.memberIdWire = uint64(meta.memberId);
    this.txns = new TxnExecutor(store, lessor);
    this.watchHub = new WatchHub(store);
    this.leaseExpiry = new LeaseExpiry(lessor, (id) => this.leaseRevoke({ ID: int64(id) }, INTERNAL), () => this.raftLog.leaderId === this.meta.memberId);
    const electionTicks = Math.max(1, Math.floor(config.electionTimeoutMs / config.heartbeatIntervalMs));
    this.leaseTtlMinSeconds = Math.ceil((Math.floor((3 * electionTicks) / 2) * config.heartbeatIntervalMs) / 1000);
  }

  static async open(config: ServerConfig, log: Logger): Promise<CairnServer> {
    const memberDir = join(config.dataDir, 'member');
    const walDir = config.walDir || join(memberDir, 'wal');
    await mkdir(memberDir, { recursive: true, mode: 0o700 });
    let { wal, contents } = await Wal.open(walDir);
    if (contents.repairedTail) log.warn({ file: contents.repairedTail.file, offset: contents.repairedTail.offset }, 'cut a torn write off the end of the WAL');
    const fresh = contents.metadata === undefined;
    const joining = fresh && config.initialClusterState === 'existing' && parseInitialCluster(config.initialCluster).length > 1;
    let meta = fresh ? (joining ? joinMeta(config) : bootstrapMeta(config)) : decodeMemberMeta(contents.metadata!);
    if (!fresh && meta.name !== config.name) {
      throw new Error(`data dir ${config.dataDir} belongs to member "${meta.name}" (${idToHex(meta.memberId)}), not "${config.name}": refusing to start it under another name`);
    }
    if (config.forceNewCluster && !fresh && meta.members.length > 1) {
      ({ wal, contents, meta } = await forceNewCluster(config, walDir, wal, contents, meta, log));
    }
    let adopted: Promise<{ clusterId: bigint; memberId: bigint }> | undefined;
    let adopt: (ids: { clusterId: bigint; memberId: bigint }) => void = () => undefined;
    if (joining) adopted = new Promise((resolve) => (adopt = resolve));
    else if (fresh) wal.appendMetadata(encodeMemberMeta(meta));
    const lastIndex = contents.entries.length ? contents.entries[contents.entries.length - 1].index : contents.snapshot?.index ?? 0;
    const clustered = meta.members.length > 1;
    // Checked on every start, so a bad --peer-* flag is found before the cluster grows.
    const peerSecurity = await peerTls(config, log);
    let transport: PeerTransport | undefined;
    let raftLog: ReplicatedLog;
    let memberRef: CairnServer | undefined; // peer messages other than Raft's go to the member once it exists
    if (!clustered) {
      // Each start of a single member is a new election: the term goes up by one (a fresh
      // member bootstraps at term 1 and elects itself at term 2, as etcd does).
      const term = (contents.hardState?.term ?? 1) + 1;
      wal.appendHardState({ term, vote: meta.memberId, commit: lastIndex });
      raftLog = new LocalLog(wal, lastIndex, term, meta.memberId);
    } else {
      const handlers = {
        onMessage: (from: bigint, m: Uint8Array) => {
          if (m[0] === PeerEnvelope.Raft) rl.receive(m.subarray(1));
          else memberRef?.onPeerMessage(from, m[0], Buffer.from(m.buffer, m.byteOffset + 1, m.byteLength - 1));
        },
        onSnapshot: (_from: bigint, metadata: Uint8Array, data: AsyncIterable<Buffer>) => rl.receiveSnapshot(metadata, data),
      };
      const sockets = peerSockets(peerSecurity);
      transport = new PeerTransport(
        { clusterId: meta.clusterId, memberId: meta.memberId, listenUrls: config.listenPeerUrls, logger: log, onClusterId: (clusterId, memberId) => adopt({ clusterId, memberId }), sockets },
        handlers,
      );
      await transport.start();
      if (adopted) {
        // A member added with `member add` learns its cluster from the first member that
        // dials it (once the add is applied there), then starts with an empty log.
        log.info({ name: meta.name }, 'waiting for a member of the existing cluster to dial in');
        const ids = await adopted;
        const self = meta.members.find((m) => m.name === meta.name)!;
        meta = { ...meta, clusterId: ids.clusterId, memberId: ids.memberId, members: meta.members.map((m) => (m === self ? { ...m, id: ids.memberId } : m)) };
        wal.appendMetadata(encodeMemberMeta(meta));
      }
      const rl: RaftLog = new RaftLog({
        memberId: meta.memberId,
        members: new Map(meta.members.map((m) => [m.id, m.peerUrls])),
        heartbeatMs: config.heartbeatIntervalMs,
        electionMs: config.electionTimeoutMs,
        wal,
        contents,
        transport,
        log,
        bootstrap: fresh && !joining,
        readTimeoutMs: requestTimeoutMs(config),
        snapshotData: () => memberRef!.snapshot(),
        installSnapshot: (data) => memberRef!.installSnapshot(data),
        catchUpEntries: Math.min(SNAPSHOT_CATCHUP_ENTRIES, config.snapshotCount),
        snapshotTimeoutMs: 5 * 60 * 1000,
      });
      raftLog = rl;
    }
    await wal.sync();
    const backend = await Backend.open(join(memberDir, 'db'), (err) => fatal(log, err, 'backend write failed'));
    const store = await MvccStore.open(backend);
    const lessor = await Lessor.open(backend, store);
    const alarms = await Alarms.open(backend);
    const membership = new Membership(backend);
    await membership.load(joining ? [] : meta.members);
    const auth = await AuthStore.open(backend);
    const server = new CairnServer(config, log, meta, wal, backend, store, lessor, alarms, membership, auth, raftLog, new RequestIdGenerator(meta.memberId, Date.now()));
    if (raftLog instanceof RaftLog) {
      const peers = new Map(meta.members.map((m) => [m.id, m.peerUrls]));
      for (const m of membership.list()) if (m.peerUrls.length > 0) peers.set(m.id, m.peerUrls);
      for (const id of [...peers.keys()]) if (membership.wasRemoved(id)) peers.delete(id);
      raftLog.setMembers(peers);
    }
    server.transport = transport;
    server.tokenFloor = lastIndex;
    memberRef = server;
    if (store.consistentIndex > lastIndex && clustered) {
      // A leader's snapshot was installed but its mark did not reach the WAL before a crash:
      // Raft fetches the log from the leader again and apply skips what the store holds.
      log.warn({ applied_index: store.consistentIndex, wal_last_index: lastIndex }, 'the store is ahead of the WAL (an installed snapshot); catching up from the leader');
    } else if (store.consistentIndex > lastIndex) {
      throw new Error(`data dir ${config.dataDir}: the store has applied index ${store.consistentIndex} but the WAL ends at ${lastIndex}; the WAL was lost or replaced`);
    }
    if (!clustered) {
      const replay = contents.entries.filter((e) => e.index > store.consistentIndex);
      if (replay.length > 0) {
        log.info({ from: replay[0].index, to: replay[replay.length - 1].index }, 'replaying WAL entries into the store');
        server.onCommitted(replay.map((e) => ({ index: e.index, term: e.term, data: e.data })));
        await server.waitApplied(lastIndex);
      }
    }
    raftLog.subscribe(
      (entries) => server.onCommitted(entries),
      (err) => fatal(log, err, 'raft log failed'),
    );
    raftLog.start();
    if (clustered && config.initialCorruptCheck) await server.initialCorruptCheck();
    server.leaseExpiry.start();
    server.timeoutTimer = setInterval(() => server.expireWaiters(), 250);
    server.timeoutTimer.unref();
    if (clustered) {
      server.announceAttributes();
      server.announceTimer = setInterval(() => server.announceAttributes(), ANNOUNCE_INTERVAL_MS);
      server.announceTimer.unref();
    }
    log.info(
      {
        member_id: idToHex(meta.memberId),
        cluster_id: idToHex(meta.clusterId),
        members: meta.members.map((m) => `${m.name}=${idToHex(m.id)}`),
        applied_index: server.applied,
        revision: store.currentRevision,
      },
      'member started',
    );
    return server;
  }

  /** Wires the storage timings into the metrics (called once by the API layer). */
  observeStorage(onWalFsync: (seconds: number) => void, onBackendCommit: (seconds: number) => void): void {
    this.wal.onFsync = onWalFsync;
    this.backend.onCommitDuration = onBackendCommit;
  }

  /** etcd's /health: a leader exists, no alarm is raised, and the member is not stopping. */
  get healthy(): boolean {
    return !this.stopping && this.raftLog.leaderId !== 0n && this.alarms.list().length === 0;
  }

  get pendingProposals(): number {
    return this.waiters.size;
  }

  get term(): number {
    return this.raftLog.term;
  }

  get appliedIndex(): number {
    return this.applied;
  }

  get commitIndex(): number {
    return this.raftLog.commitIndex;
  }

  /** A response header; `revision` 0 or absent means the current revision, unless `exact`. */
  header(revision?: number, exact = false): etcdserverpb.IResponseHeader {
    return {
      clusterId: this.clusterIdWire,
      memberId: this.memberIdWire,
      revision: exact ? revision ?? 0 : revision || this.store.currentRevision,
      raftTerm: this.raftLog.term,
    };
  }

  // ---- reads ---------------------------------------------------------------------------

  async range(r: etcdserverpb.IRangeRequest, caller: Caller): Promise<etcdserverpb.IRangeResponse> {
    if (!r.serializable) await this.linearizableReadBarrier();
    this.auth.checkRange(caller, asBuffer(r.key), r.rangeEnd);
    try {
      const rr = await this.store.range(asBuffer(r.key), rangeEnd(r.rangeEnd), mvccRangeOptions(r));
      return rangeResponse(r, rr);
    } catch (e) {
      throw mvccError(e);
    }
  }

  /** Waits until every entry committed before the call is applied (ReadIndex, shared by concurrent reads). */
  async linearizableReadBarrier(): Promise<void> {
    if (this.stopping) throw Errors.stopped();
    const index = await this.raftLog.readIndex();
    await this.waitApplied(index);
  }

  get leaderId(): bigint {
    return this.raftLog.leaderId;
  }

  get leaderChanges(): number {
    return this.raftLog.leaderChanges;
  }

  /** Fails proposals that waited longer than etcd's request timeout. */
  expireWaiters(): void {
    const now = Date.now();
    for (const [id, w] of this.waiters) {
      if (w.deadline > now) continue;
      this.waiters.delete(id);
      w.reject(this.raftLog.leaderId === 0n ? Errors.noLeader() : Errors.timeout());
    }
  }

  // ---- writes --------------------------------------------------------------------------

  put(r: etcdserverpb.IPutRequest, caller: Caller): Promise<etcdserverpb.IPutResponse> {
    return this.propose({ put: r }, putCost(r), caller) as Promise<etcdserverpb.IPutResponse>;
  }

  deleteRange(r: etcdserverpb.IDeleteRangeRequest, caller: Caller): Promise<etcdserverpb.IDeleteRangeResponse> {
    return this.propose({ deleteRange: r }, 0, caller) as Promise<etcdserverpb.IDeleteRangeResponse>;
  }

  async txn(r: etcdserverpb.ITxnRequest, caller: Caller): Promise<etcdserverpb.ITxnResponse> {
    if (isTxnReadOnly(r)) {
      if (!isTxnSerializable(r)) await this.linearizableReadBarrier();
      this.checkTxn(caller, r);
      try {
        return await this.txns.execute(r);
      } catch (e) {
        throw mvccError(e);
      }
    }
    return this.propose({ txn: r }, txnCost(r), caller) as Promise<etcdserverpb.ITxnResponse>;
  }

  compact(r: etcdserverpb.ICompactionRequest, caller: Caller): Promise<etcdserverpb.ICompactionResponse> {
    return this.propose({ compaction: r }, 0, caller) as Promise<etcdserverpb.ICompactionResponse>;
  }

  // ---- auth ----------------------------------------------------------------------------

  /**
   * Who a client is, from the token it sent (gRPC metadata "token" or "authorization") or,
   * with none, the common name of its verified TLS certificate (--client-cert-auth). With
   * auth off nobody is checked; a token that does not resolve is refused as etcd does.
   */
  callerFrom(token: string | undefined, certCommonName: string | undefined): AuthInfo {
    if (!this.auth.enabled) return NOBODY;
    if (token !== undefined && token !== '') {
      const info = this.tokens.info(token);
      if (info === undefined) throw AuthErrors.invalidAuthToken();
      return { username: info.username, revision: info.revision ?? this.auth.revision };
    }
    if (certCommonName !== undefined && certCommonName !== '') return { username: certCommonName, revision: this.auth.revision };
    return NOBODY;
  }

  /** etcd's checkTxnAuth: every compare reads, every op of either branch (nested too) reads or writes. */
  private checkTxn(caller: Caller, r: etcdserverpb.ITxnRequest): void {
    if (caller === INTERNAL || !this.auth.enabled) return;
    for (const c of r.compare ?? []) this.auth.checkRange(caller, asBuffer(c.key), c.rangeEnd);
    for (const op of [...(r.success ?? []), ...(r.failure ?? [])]) {
      if (op.requestRange) this.auth.checkRange(caller, asBuffer(op.requestRange.key), op.requestRange.rangeEnd);
      else if (op.requestPut) this.checkPutAuth(caller, op.requestPut);
      else if (op.requestDeleteRange) this.checkDeleteAuth(caller, op.requestDeleteRange);
      else if (op.requestTxn) this.checkTxn(caller, op.requestTxn);
    }
  }

  private checkPutAuth(caller: Caller, r: etcdserverpb.IPutRequest): void {
    this.auth.checkPut(caller, asBuffer(r.key));
    this.checkLeasePuts(caller, toBigInt(r.lease));
    if (r.prevKv) this.auth.checkRange(caller, asBuffer(r.key));
  }

  private checkDeleteAuth(caller: Caller, r: etcdserverpb.IDeleteRangeRequest): void {
    this.auth.checkDeleteRange(caller, asBuffer(r.key), r.rangeEnd);
    if (r.prevKv) this.auth.checkRange(caller, asBuffer(r.key), r.rangeEnd);
  }

  /** A lease may be attached or revoked only by a caller who may write every key it holds. */
  private checkLeasePuts(caller: Caller, id: bigint): void {
    if (caller === INTERNAL || !this.auth.enabled || id === 0n) return;
    const lease = this.lessor.get(id);
    if (lease) for (const k of lease.keys) this.auth.checkPut(caller, Buffer.from(k, 'latin1'));
  }

  /**
   * Authenticate: the password is checked here (bcrypt, off the log), then an entry makes the
   * token known to every member and proves no user or role changed since the check (etcd
   * loops on that; so does this, a few times).
   */
  async authenticate(r: etcdserverpb.IAuthenticateRequest): Promise<etcdserverpb.IAuthenticateResponse> {
    const name = r.name ?? '';
    for (let attempt = 0; ; attempt++) {
      if (!this.auth.enabled) throw AuthErrors.authNotEnabled();
      const user = this.auth.user(name);
      const checkedRevision = this.auth.revision;
      if (user === undefined || user.noPassword) throw AuthErrors.authFailed();
      if (!(await bcrypt.compare(r.password ?? '', user.passwordHash))) throw AuthErrors.authFailed();
      const simpleToken = this.tokens instanceof SimpleTokens ? newSimpleToken(++this.tokenSeq) : '';
      try {
        const res = (await this.propose({ authenticate: { name, simpleToken, checkedRevision } }, 0, INTERNAL)) as { revision: number };
        const token = this.tokens instanceof JwtTokens ? this.tokens.sign(name, res.revision) : simpleToken;
        return { token };
      } catch (e) {
        if (attempt < 3 && e instanceof EtcdError && e.message === AuthErrors.oldRevision().message) continue;
        throw e;
      }
    }
  }

  authEnable(caller: Caller): Promise<etcdserverpb.IAuthEnableResponse> {
    return this.propose({ authEnable: {} }, 0, caller) as Promise<etcdserverpb.IAuthEnableResponse>;
  }

  authDisable(caller: Caller): Promise<etcdserverpb.IAuthDisableResponse> {
    return this.propose({ authDisable: {} }, 0, caller) as Promise<etcdserverpb.IAuthDisableResponse>;
  }

  async userAdd(r: etcdserverpb.IAuthUserAddRequest, caller: Caller): Promise<etcdserverpb.IAuthUserAddResponse> {
    this.auth.checkAdmin(caller); // before spending a hash on it; apply checks again
    const noPassword = r.options?.noPassword === true;
    const passwordHash = noPassword ? '' : await bcrypt.hash(r.password ?? '', this.config.bcryptCost);
    return this.propose({ userAdd: { name: r.name ?? '', passwordHash, noPassword } }, 0, caller) as Promise<etcdserverpb.IAuthUserAddResponse>;
  }

  async userChangePassword(r: etcdserverpb.IAuthUserChangePasswordRequest, caller: Caller): Promise<etcdserverpb.IAuthUserChangePasswordResponse> {
    this.auth.checkAdmin(caller);
    const passwordHash = await bcrypt.hash(r.password ?? '', this.config.bcryptCost);
    return this.propose({ userChangePassword: { name: r.name ?? '', passwordHash } }, 0, caller) as Promise<etcdserverpb.IAuthUserChangePasswordResponse>;
  }

  userDelete(r: etcdserverpb.IAuthUserDeleteRequest, caller: Caller): Promise<etcdserverpb.IAuthUserDeleteResponse> {
    return this.propose({ userDelete: r }, 0, caller) as Promise<etcdserverpb.IAuthUserDeleteResponse>;
  }

  userGrantRole(r: etcdserverpb.IAuthUserGrantRoleRequest, caller: Caller): Promise<etcdserverpb.IAuthUserGrantRoleResponse> {
    return this.propose({ userGrantRole: r }, 0, caller) as Promise<etcdserverpb.IAuthUserGrantRoleResponse>;
  }

  userRevokeRole(r: etcdserverpb.IAuthUserRevokeRoleRequest, caller: Caller): Promise<etcdserverpb.IAuthUserRevokeRoleResponse> {
    return this.propose({ userRevokeRole: r }, 0, caller) as Promise<etcdserverpb.IAuthUserRevokeRoleResponse>;
  }

  roleAdd(r: etcdserverpb.IAuthRoleAddRequest, caller: Caller): Promise<etcdserverpb.IAuthRoleAddResponse> {
    return this.propose({ roleAdd: r }, 0, caller) as Promise<etcdserverpb.IAuthRoleAddResponse>;
  }

  roleDelete(r: etcdserverpb.IAuthRoleDeleteRequest, caller: Caller): Promise<etcdserverpb.IAuthRoleDeleteResponse> {
    return this.propose({ roleDelete: r }, 0, caller) as Promise<etcdserverpb.IAuthRoleDeleteResponse>;
  }

  roleGrantPermission(r: etcdserverpb.IAuthRoleGrantPermissionRequest, caller: Caller): Promise<etcdserverpb.IAuthRoleGrantPermissionResponse> {
    return this.propose({ roleGrantPermission: r }, 0, caller) as Promise<etcdserverpb.IAuthRoleGrantPermissionResponse>;
  }

  roleRevokePermission(r: etcdserverpb.IAuthRoleRevokePermissionRequest, caller: Caller): Promise<etcdserverpb.IAuthRoleRevokePermissionResponse> {
    return this.propose({ roleRevokePermission: r }, 0, caller) as Promise<etcdserverpb.IAuthRoleRevokePermissionResponse>;
  }

  /** etcd lets a user read itself without the root role. */
  async userGet(r: etcdserverpb.IAuthUserGetRequest, caller: Caller): Promise<etcdserverpb.IAuthUserGetResponse> {
    await this.linearizableReadBarrier();
    if (caller === INTERNAL || caller.username !== r.name) this.auth.checkAdmin(caller);
    return { roles: this.auth.userGet(r.name ?? '') };
  }

  async userList(caller: Caller): Promise<etcdserverpb.IAuthUserListResponse> {
    await this.linearizableReadBarrier();
    this.auth.checkAdmin(caller);
    return { users: this.auth.userList() };
  }

  /** etcd lets a user read a role it holds without the root role. */
  async roleGet(r: etcdserverpb.IAuthRoleGetRequest, caller: Caller): Promise<etcdserverpb.IAuthRoleGetResponse> {
    await this.linearizableReadBarrier();
    if (caller === INTERNAL || !this.auth.hasRole(caller.username, r.role ?? '')) this.auth.checkAdmin(caller);
    return { perm: this.auth.roleGet(r.role ?? '') };
  }

  async roleList(caller: Caller): Promise<etcdserverpb.IAuthRoleListResponse> {
    await this.linearizableReadBarrier();
    this.auth.checkAdmin(caller);
    return { roles: this.auth.roleList() };
  }

  // ---- leases --------------------------------------------------------------------------

  leaseGrant(r: etcdserverpb.ILeaseGrantRequest): Promise<etcdserverpb.ILeaseGrantResponse> {
    const requested = toNumber(r.TTL);
    if (requested > LEASE_TTL_MAX_SECONDS) return Promise.reject(Errors.leaseTTLTooLarge());
    let id = toBigInt(r.ID);
    while (id === 0n) id = this.ids.next() & 0x7fff_ffff_ffff_ffffn;
    const ttl = Math.max(requested, this.leaseTtlMinSeconds);
    return this.propose({ leaseGrant: { ID: int64(id), TTL: ttl } }, 64, INTERNAL) as Promise<etcdserverpb.ILeaseGrantResponse>;
  }

  leaseRevoke(r: etcdserverpb.ILeaseRevokeRequest, caller: Caller): Promise<etcdserverpb.ILeaseRevokeResponse> {
    return this.propose({ leaseRevoke: r }, 0, caller) as Promise<etcdserverpb.ILeaseRevokeResponse>;
  }

  /**
   * Renews a lease; its TTL, or 0 when it is gone. Only the leader's deadlines count, so a
   * follower forwards the renewal to the leader over the peer transport (as etcd does).
   */
  leaseKeepAlive(id: bigint): Promise<number> {
    if (this.stopping) return Promise.reject(Errors.stopped());
    if (this.raftLog.leaderId === this.meta.memberId) return Promise.resolve(this.leaseExpiry.keepAlive(id) ?? 0);
    return this.askLeader(PeerEnvelope.LeaseRenew, id);
  }

  /** Seconds a lease has left, as the leader (whose deadlines count) sees it; -1 when expired. */
  private leaseRemaining(id: bigint): Promise<number> {
    if (this.raftLog.leaderId === this.meta.memberId) return Promise.resolve(this.leaseExpiry.remainingSeconds(id));
    return this.askLeader(PeerEnvelope.LeaseRemaining, id);
  }

  /** A lease question for the leader over the peer transport; answered with one number. */
  private askLeader(kind: PeerEnvelope, leaseId: bigint): Promise<number> {
    const leader = this.raftLog.leaderId;
    if (leader === 0n || this.transport === undefined) return Promise.reject(Errors.noLeader());
    const reqId = ++this.renewSeq;
    const body = Buffer.alloc(16);
    body.writeBigUInt64BE(BigInt(reqId), 0);
    body.writeBigInt64BE(leaseId, 8);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.renewals.delete(reqId);
        reject(Errors.timeout());
      }, LEASE_RENEW_TIMEOUT_MS);
      this.renewals.set(reqId, { resolve, timer });
      this.transport!.send(leader, withEnvelope(kind, body));
    });
  }

  /** Peer messages that are not Raft's: lease renewals and member attributes. */
  onPeerMessage(from: bigint, kind: number, body: Buffer): void {
    try {
      if ((kind === PeerEnvelope.LeaseRenew || kind === PeerEnvelope.LeaseRemaining) && body.length === 16) {
        const leading = this.raftLog.leaderId === this.meta.memberId;
        const lease = body.readBigInt64BE(8);
        const value =
          kind === PeerEnvelope.LeaseRenew ? (leading ? this.leaseExpiry.keepAlive(lease) ?? 0 : 0) : leading ? this.leaseExpiry.remainingSeconds(lease) : -1;
        const answer = Buffer.alloc(16);
        body.copy(answer, 0, 0, 8);
        answer.writeBigInt64BE(BigInt(value), 8);
        this.transport?.send(from, withEnvelope(kind === PeerEnvelope.LeaseRenew ? PeerEnvelope.LeaseRenewed : PeerEnvelope.LeaseRemainingAnswer, answer));
      } else if ((kind === PeerEnvelope.LeaseRenewed || kind === PeerEnvelope.LeaseRemainingAnswer) && body.length === 16) {
        const reqId = Number(body.readBigUInt64BE(0));
        const pending = this.renewals.get(reqId);
        if (pending === undefined) return;
        this.renewals.delete(reqId);
        clearTimeout(pending.timer);
        pending.resolve(Number(body.readBigInt64BE(8)));
      } else if (kind === PeerEnvelope.HashKV && body.length === 16) {
        const reqId = body.subarray(0, 8);
        const rev = Number(body.readBigUInt64BE(8));
        const answer = (status: number, hash: number, compactRev: number): void => {
          const out = Buffer.alloc(21);
          reqId.copy(out, 0);
          out[8] = status;
          out.writeUInt32BE(hash >>> 0, 9);
          out.writeBigUInt64BE(BigInt(Math.max(0, compactRev)), 13);
          this.transport?.send(from, withEnvelope(PeerEnvelope.HashKVAnswer, out));
        };
        this.store.hashKV(rev).then(
          (h) => answer(0, h.hash, h.compactRevision),
          (e) => answer(String(e).includes('compacted') ? 1 : 2, 0, this.store.compactRevision),
        );
      } else if (kind === PeerEnvelope.HashKVAnswer && body.length === 21) {
        const pending = this.hashQueries.get(body.readBigUInt64BE(0));
        if (pending) pending({ status: body[8], hash: body.readUInt32BE(9), compactRevision: Number(body.readBigUInt64BE(13)) });
      } else if (kind === PeerEnvelope.Attributes) {
        const attrs = JSON.parse(body.toString('utf8')) as { name?: unknown; clientUrls?: unknown; peerUrls?: unknown };
        if (Array.isArray(attrs.clientUrls) && attrs.clientUrls.every((u) => typeof u === 'string')) {
          this.clientUrlsOf.set(from, attrs.clientUrls as string[]);
        }
        if (typeof attrs.name === 'string') this.namesOf.set(from, attrs.name);
        // A member that just joined knows no one yet: it learns its peers as they announce.
        const urls = attrs.peerUrls;
        if (this.transport && Array.isArray(urls) && urls.every((u) => typeof u === 'string') && !this.transport.stats().has(from)) {
          this.transport.addPeer(from, urls as string[]);
          this.announceAttributes();
        }
      }
    } catch (e) {
      this.log.warn({ err: e, from: idToHex(from), kind }, 'dropping an unreadable peer message');
    }
  }

  /** Client URLs a member announced (its own come from the flags). */
  clientUrls(id: bigint): string[] {
    if (id === this.meta.memberId) return this.config.advertiseClientUrls;
    const published = this.membership.get(id)?.clientUrls;
    return published && published.length > 0 ? published : this.clientUrlsOf.get(id) ?? [];
  }

  /**
   * Publishes this member's name and client URLs through the log when the membership does
   * not have them yet (etcd publishes its attributes the same way at start). Retried on the
   * announcement timer until applied.
   */
  private publishAttributes(): void {
    const self = this.membership.get(this.meta.memberId);
    if (self === undefined || this.raftLog.leaderId === 0n || this.publishing) return;
    const urls = this.config.advertiseClientUrls;
    const peerUrls = this.config.initialAdvertisePeerUrls;
    const same = (a: string[] | undefined, b: string[]): boolean => JSON.stringify(a ?? []) === JSON.stringify(b);
    if (self.name === this.meta.name && same(self.clientUrls, urls) && same(self.peerUrls, peerUrls)) return;
    this.publishing = true;
    this.propose({ memberAttributes: { ID: uint64(this.meta.memberId), name: this.meta.name, clientURLs: urls, peerURLs: peerUrls } }, 0, INTERNAL)
      .catch(() => undefined)
      .finally(() => (this.publishing = false));
  }

  /** Tells the other members this member's client URLs, now and periodically (they are not persisted). */
  private announceAttributes(): void {
    if (this.transport === undefined) return;
    this.publishAttributes();
    const body = Buffer.from(
      JSON.stringify({ name: this.meta.name, clientUrls: this.config.advertiseClientUrls, peerUrls: this.config.initialAdvertisePeerUrls }),
      'utf8',
    );
    for (const id of this.transport.stats().keys()) this.transport.send(id, withEnvelope(PeerEnvelope.Attributes, body));
  }

  async leaseTimeToLive(r: etcdserverpb.ILeaseTimeToLiveRequest): Promise<etcdserverpb.ILeaseTimeToLiveResponse> {
    await this.linearizableReadBarrier();
    const id = toBigInt(r.ID);
    const lease: Lease | undefined = this.lessor.get(id);
    if (lease === undefined) return { ID: r.ID, TTL: -1 };
    const keys = r.keys ? [...lease.keys].sort().map((k) => Buffer.from(k, 'latin1')) : [];
    return { ID: r.ID, TTL: await this.leaseRemaining(id), grantedTTL: lease.ttlSeconds, keys };
  }

  async leaseLeases(): Promise<etcdserverpb.ILeaseLeasesResponse> {
    await this.linearizableReadBarrier();
    return { leases: this.lessor.all().map((l) => ({ ID: int64(l.id) })) };
  }

  // ---- membership ----------------------------------------------------------------------

  /**
   * --experimental-initial-corrupt-check: once caught up with the leader, compare this
   * member's HashKV with every reachable peer's at the same revision (skipping peers that
   * compacted past it or differ in compaction). A mismatch means this member's data is not
   * the cluster's: it says so and stops rather than serve it.
   */
  async initialCorruptCheck(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while ((this.raftLog.leaderId === 0n || this.applied < this.raftLog.commitIndex) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const rev = this.store.currentRevision;
    const mine = await this.store.hashKV(rev);
    const peers = this.membership.list().filter((m) => m.id !== this.meta.memberId);
    for (const p of peers) {
      const reqId = this.ids.next();
      const body = Buffer.alloc(16);
      body.writeBigUInt64BE(reqId, 0);
      body.writeBigUInt64BE(BigInt(rev), 8);
      const answer = await new Promise<{ status: number; hash: number; compactRevision: number } | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 2000);
        this.hashQueries.set(reqId, (a) => {
          clearTimeout(timer);
          resolve(a);
        });
        this.transport?.send(p.id, withEnvelope(PeerEnvelope.HashKV, body));
      });
      this.hashQueries.delete(reqId);
      if (answer === undefined || answer.status !== 0 || answer.compactRevision !== Math.max(0, mine.compactRevision)) {
        this.log.warn({ peer: idToHex(p.id), revision: rev }, 'initial corruption check: cannot compare with this peer');
        continue;
      }
      if (answer.hash !== mine.hash) {
        this.log.fatal(
          { peer: idToHex(p.id), revision: rev, local_hash: mine.hash, peer_hash: answer.hash },
          'initial corruption check: found data inconsistency with peers; stopping',
        );
        process.exit(1);
      }
    }
    this.log.info({ revision: rev, hash: mine.hash, peers: peers.length }, 'initial corruption check passed');
  }

  /** etcd's MoveLeader: only the leader can hand over, to a voting member; waits for the change. */
  async moveLeader(target: bigint): Promise<etcdserverpb.IMoveLeaderResponse> {
    const leader = this.raftLog.leaderId;
    if (target === this.meta.memberId && leader === target) return {};
    if (leader !== this.meta.memberId) throw Errors.notLeader();
    const m = this.membership.get(target);
    if (m === undefined || m.isLearner || !(this.raftLog instanceof RaftLog)) throw Errors.badLeaderTransferee();
    this.raftLog.transferLeader(target);
    if (!(await this.leaderSettles(() => this.raftLog.leaderId === target, Date.now() + requestTimeoutMs(this.config)))) throw Errors.timeoutLeaderTransfer();
    return {};
  }

  /** Waits for a leadership transfer: true once `settled` holds, false if `deadline` passes first. */
  private async leaderSettles(settled: () => boolean, deadline: number): Promise<boolean> {
    while (!settled()) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  }

  /**
   * etcd's TransferLeadership at stop: a leader with a voting peer hands leadership over
   * before it stops, so its clients move on at once instead of waiting out an election.
   * Best effort: Raft gives a transfer up after an election timeout (the transferee may be
   * stopping too: a whole cluster stopped at once), and then the member stops anyway.
   */
  async handOverLeadership(): Promise<void> {
    const raft = this.raftLog;
    if (!(raft instanceof RaftLog) || this.stopping) return;
    const target = raft.bestTransferee();
    if (target === undefined) return;
    this.log.info({ transferee: idToHex(target) }, 'leader is stopping: transferring leadership');
    raft.transferLeader(target);
    const handedOver = (): boolean => raft.leaderId !== this.meta.memberId && raft.leaderId !== 0n;
    if (await this.leaderSettles(handedOver, Date.now() + this.config.electionTimeoutMs + 2 * this.config.heartbeatIntervalMs)) this.log.info({ leader: idToHex(raft.leaderId) }, 'leadership transferred');
    else this.log.warn({ transferee: idToHex(target) }, 'leadership transfer did not complete; stopping anyway');
  }

  memberList(): etcdserverpb.IMember[] {
    return this.membership.list().map((m) => this.memberToWire(m));
  }

  memberAdd(r: etcdserverpb.IMemberAddRequest): Promise<etcdserverpb.IMemberAddResponse> {
    const peerUrls = r.peerURLs ?? [];
    if (peerUrls.length === 0 || !peerUrls.every(validPeerUrl)) return Promise.reject(Errors.memberBadUrls());
    const used = new Set(this.membership.list().flatMap((m) => m.peerUrls));
    if (peerUrls.some((u) => used.has(u))) return Promise.reject(Errors.peerUrlExists());
    // etcd mixes the time into a new member's ID, so a member removed and added again with
    // the same URLs is a new member; the new process learns its ID from the first member
    // that dials it.
    const id = computeMemberId(peerUrls, `${MEMBER_ADD_TOKEN}:${Date.now()}`);
    if (this.membership.get(id) || this.membership.wasRemoved(id)) return Promise.reject(Errors.memberExists());
    const member: Member = { id, name: '', peerUrls, isLearner: r.isLearner === true };
    if (!member.isLearner && !this.enoughStartedAfter(1, undefined)) return Promise.reject(Errors.notEnoughStarted());
    return this.proposeMembership(r.isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode, member) as Promise<etcdserverpb.IMemberAddResponse>;
  }

  memberRemove(r: etcdserverpb.IMemberRemoveRequest): Promise<etcdserverpb.IMemberRemoveResponse> {
    const m = this.membership.get(toBigInt(r.ID, true));
    if (m === undefined) return Promise.reject(Errors.memberNotFound());
    if (!m.isLearner && !this.enoughStartedAfter(-1, m.id)) return Promise.reject(Errors.notEnoughStarted());
    return this.proposeMembership(ConfChangeType.RemoveNode, m) as Promise<etcdserverpb.IMemberRemoveResponse>;
  }

  memberPromote(r: etcdserverpb.IMemberPromoteRequest): Promise<etcdserverpb.IMemberPromoteResponse> {
    const m = this.membership.get(toBigInt(r.ID, true));
    if (m === undefined) return Promise.reject(Errors.memberNotFound());
    if (!m.isLearner) return Promise.reject(Errors.memberNotLearner());
    return this.proposeMembership(ConfChangeType.AddNode, { ...m, isLearner: false }) as Promise<etcdserverpb.IMemberPromoteResponse>;
  }

  memberUpdate(r: etcdserverpb.IMemberUpdateRequest): Promise<etcdserverpb.IMemberUpdateResponse> {
    const m = this.membership.get(toBigInt(r.ID, true));
    if (m === undefined) return Promise.reject(Errors.memberNotFound());
    const peerUrls = r.peerURLs ?? [];
    if (peerUrls.length === 0 || !peerUrls.every(validPeerUrl)) return Promise.reject(Errors.memberBadUrls());
    return this.propose({ memberUpdate: r }, 0, INTERNAL) as Promise<etcdserverpb.IMemberUpdateResponse>;
  }

  /**
   * --strict-reconfig-check: after adding (delta 1, the new one not started yet) or removing
   * (delta -1) a voter, the voters this member can reach must still be a quorum.
   */
  private enoughStartedAfter(delta: 1 | -1, removing: bigint | undefined): boolean {
    if (!this.config.strictReconfigCheck) return true;
    const voters = this.membership.list().filter((m) => !m.isLearner);
    const started = voters.filter((m) => m.id !== removing && (m.id === this.meta.memberId || this.transport?.isActive(m.id) === true)).length;
    const size = voters.length + delta;
    return started >= Math.floor(size / 2) + 1;
  }

  private memberToWire(m: Member): etcdserverpb.IMember {
    const name = m.name || (m.id === this.meta.memberId ? this.meta.name : this.namesOf.get(m.id) ?? '');
    return { ID: uint64(m.id), name, peerURLs: m.peerUrls, clientURLs: this.clientUrls(m.id), isLearner: m.isLearner };
  }

  /** Membership changes go through Raft as configuration changes; the waiter is resolved when one is applied. */
  private proposeMembership(type: ConfChangeType, member: Member): Promise<unknown> {
    if (!(this.raftLog instanceof RaftLog)) return Promise.reject(Errors.notImplemented('membership changes on a member started without peers'));
    if (this.stopping) return Promise.reject(Errors.stopped());
    const reqId = this.ids.next();
    const context = Buffer.from(JSON.stringify({ reqId: reqId.toString(), name: member.name, peerUrls: member.peerUrls, isLearner: member.isLearner }), 'utf8');
    try {
      this.raftLog.proposeConfChange({ type, nodeId: member.id, context });
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      this.waiters.set(this.ids.ownKey(reqId), { resolve, reject, deadline: Date.now() + requestTimeoutMs(this.config), entry: EMPTY_ENTRY });
    });
  }

  /** Records an applied membership change and answers its proposer. */
  private applyConfChange(cc: { type: number; nodeId: bigint; context: Uint8Array }): void {
    let ctx: { reqId?: string; name?: string; peerUrls?: string[]; isLearner?: boolean } = {};
    try {
      if (cc.context.length > 0) ctx = JSON.parse(Buffer.from(cc.context).toString('utf8'));
    } catch {
      ctx = {};
    }
    const existing = this.membership.get(cc.nodeId);
    if (cc.type === ConfChangeType.RemoveNode) {
      if (existing) this.membership.remove(cc.nodeId);
      if (cc.nodeId !== this.meta.memberId) this.transport?.removePeer(cc.nodeId);
    } else if (ctx.peerUrls !== undefined || existing === undefined) {
      // The bootstrap entries carry no context: their members come from the initial cluster.
      const initial = this.meta.members.find((x) => x.id === cc.nodeId);
      const m: Member = {
        id: cc.nodeId,
        name: existing?.name || ctx.name || initial?.name || '',
        peerUrls: ctx.peerUrls ?? (existing && existing.peerUrls.length > 0 ? existing.peerUrls : initial?.peerUrls ?? []),
        isLearner: cc.type === ConfChangeType.AddLearnerNode,
      };
      this.membership.put(m);
      if (cc.nodeId !== this.meta.memberId && this.transport && !this.transport.stats().has(cc.nodeId) && m.peerUrls.length > 0) {
        this.transport.addPeer(cc.nodeId, m.peerUrls);
      }
    } else if (existing) {
      this.membership.put({ ...existing, isLearner: cc.type === ConfChangeType.AddLearnerNode });
    }
    this.log.info({ change: ConfChangeType[cc.type], member: idToHex(cc.nodeId) }, 'membership changed');
    const key = ctx.reqId !== undefined ? this.ids.ownKey(BigInt(ctx.reqId)) : -1;
    const waiter = this.waiters.get(key);
    if (waiter) {
      this.waiters.delete(key);
      const member = this.membership.get(cc.nodeId) ?? { id: cc.nodeId, name: ctx.name ?? '', peerUrls: ctx.peerUrls ?? [], isLearner: false };
      waiter.resolve({ header: { revision: this.store.currentRevision }, member: this.memberToWire(member), members: this.memberList() });
    }
    if (cc.type === ConfChangeType.RemoveNode && cc.nodeId === this.meta.memberId) {
      this.log.warn('this member was removed from the cluster; stopping');
      setTimeout(() => process.kill(process.pid, 'SIGTERM'), 200).unref();
    }
  }

  // ---- maintenance ---------------------------------------------------------------------

  async alarm(r: etcdserverpb.IAlarmRequest): Promise<etcdserverpb.IAlarmResponse> {
    if ((r.action ?? 0) === etcdserverpb.AlarmRequest.AlarmAction.GET) {
      await this.linearizableReadBarrier();
      return { alarms: this.alarmsToWire(this.alarms.list()) };
    }
    return this.propose({ alarm: r }, 0, INTERNAL) as Promise<etcdserverpb.IAlarmResponse>;
  }

  status(): etcdserverpb.IStatusResponse {
    const dbSize = this.store.stats().dbSizeBytes;
    return {
      version: ETCD_API_VERSION,
      dbSize,
      dbSizeInUse: dbSize,
      leader: uint64(this.raftLog.leaderId),
      raftIndex: this.raftLog.commitIndex,
      raftTerm: this.raftLog.term,
      raftAppliedIndex: this.applied,
      errors: this.alarms.list().map((a) => `memberID:${a.memberId} alarm:${a.type === AlarmType.NoSpace ? 'NOSPACE' : 'CORRUPT'} `),
      isLearner: false,
    };
  }

  async hashKV(r: etcdserverpb.IHashKVRequest): Promise<etcdserverpb.IHashKVResponse> {
    await this.linearizableReadBarrier();
    try {
      const h = await this.store.hashKV(toNumber(r.revision));
      return { header: { revision: h.revision }, hash: h.hash, compactRevision: h.compactRevision };
    } catch (e) {
      throw mvccError(e);
    }
  }

  async hash(): Promise<etcdserverpb.IHashResponse> {
    const h = await this.store.hashKV(0);
    return { hash: h.hash };
  }

  snapshot(): AsyncGenerator<Buffer> {
    return snapshotChunks(this.backend);
  }

  async defragment(): Promise<etcdserverpb.IDefragmentResponse> {
    await this.store.settle();
    // LevelDB's own compaction rewrites the tables without deleted records: its defragmentation.
    const db = this.backend.db as unknown as { compactRange(start: Buffer, end: Buffer): Promise<void> };
    await db.compactRange(Buffer.alloc(0), Buffer.alloc(64, 0xff));
    return {};
  }

  private alarmsToWire(list: Alarm[]): etcdserverpb.IAlarmMember[] {
    return list.map((a) => ({ memberID: uint64(a.memberId), alarm: a.type as number as etcdserverpb.AlarmType }));
  }

  private propose(req: cairnpb.IInternalRequest, costBytes: number, caller: Caller): Promise<unknown> {
    if (this.stopping) return Promise.reject(Errors.stopped());
    if (this.alarms.has(AlarmType.Corrupt) && !req.alarm) return Promise.reject(Errors.corrupt()); // as etcd's corrupt applier: alarms still go through, so CORRUPT can be cleared
    if (this.raftLog.commitIndex - this.applied > APPLY_GAP_MAX) return Promise.reject(Errors.tooManyRequests());
    if (costBytes > 0 && this.alarms.has(AlarmType.NoSpace)) return Promise.reject(Errors.noSpace());
    const quota = this.config.quotaBackendBytes || QUOTA_BACKEND_BYTES_DEFAULT;
    if (costBytes > 0 && this.store.dbSizeBytes + costBytes > quota) {
      // As etcd: raise the NOSPACE alarm (through the log) and refuse the write.
      const raise = { alarm: { action: etcdserverpb.AlarmRequest.AlarmAction.ACTIVATE, memberID: uint64(this.meta.memberId), alarm: etcdserverpb.AlarmType.NOSPACE } };
      this.propose(raise, 0, INTERNAL).catch(() => undefined);
      return Promise.reject(Errors.noSpace());
    }
    const id = this.ids.next();
    const key = this.ids.ownKey(id);
    req.id = uint64(id);
    if (caller === INTERNAL) req.internal = true;
    else if (caller.username !== '') {
      req.username = caller.username;
      req.authRevision = caller.revision;
    }
    const data = cairnpb.InternalRequest.encode(req).finish();
    if (data.length > this.config.maxRequestBytes) return Promise.reject(Errors.requestTooLarge());
    const entry = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return new Promise((resolve, reject) => {
      const dropped = (err: Error): void => {
        if (this.waiters.get(key)?.entry !== entry) return; // answered already
        this.waiters.delete(key);
        reject(err);
      };
      try {
        this.raftLog.propose(entry, dropped);
      } catch (e) {
        reject(e);
        return;
      }
      this.waiters.set(key, { resolve, reject, deadline: Date.now() + requestTimeoutMs(this.config), entry, req });
    });
  }

  // ---- apply ---------------------------------------------------------------------------

  private onCommitted(entries: CommittedEntry[]): void {
    this.counters.proposalsCommitted += entries.length;
    for (const e of entries) this.applyQueue.push(e);
    if (!this.applying) void this.runApply();
  }

  private async runApply(): Promise<void> {
    if (this.installing) return; // picked up again when the snapshot is in place
    this.applying = true;
    try {
      while (this.applyQueue.length > 0) {
        const batch = this.applyQueue;
        this.applyQueue = [];
        for (const e of batch) {
          if (e.index <= this.applied) continue; // delivered again after a restart: already in the store
          const pending = this.applyEntry(e);
          if (pending !== undefined) await pending;
          this.store.setConsistentIndex(e.index);
          this.applied = e.index;
          this.counters.proposalsApplied++;
        }
        this.backend.commitSoon(BACKEND_COMMIT_DELAY_MS);
        this.notifyApplied();
        // With peers, Raft may still need old entries for a lagging follower, and a restart
        // rebuilds its log from the WAL: segments stay until Raft snapshots exist.
        if (this.meta.members.length === 1 && this.applied - this.releasedAt >= RELEASE_EVERY_ENTRIES) void this.releaseWal(this.applied);
        if (this.meta.members.length > 1 && this.applied - this.snapshotIndex >= this.config.snapshotCount) this.takeSnapshot();
      }
    } catch (e) {
      fatal(this.log, e, 'apply failed');
    } finally {
      this.applying = false;
    }
  }

  private applyEntry(e: CommittedEntry): Promise<void> | undefined {
    if (e.confChange) {
      this.applyConfChange(e.confChange);
      return undefined;
    }
    if (e.data.length === 0) return undefined;
    // This member's own proposal comes back with its ID first: its waiter holds the request
    // (the leader gets the same bytes back, a follower a copy), so it is not decoded again.
    const key = this.ids.ownKeyOf(e.data);
    const waiter = key >= 0 ? this.waiters.get(key) : undefined;
    if (waiter !== undefined) this.waiters.delete(key);
    const req = waiter?.req ?? cairnpb.InternalRequest.decode(e.data);
    const caller: Caller = req.internal ? INTERNAL : { username: req.username ?? '', revision: toNumber(req.authRevision) };
    try {
      if ((req.put || req.leaseGrant || (req.txn && !isTxnReadOnly(req.txn) && txnCost(req.txn) > 0)) && this.alarms.has(AlarmType.NoSpace)) {
        this.refuse(waiter, Errors.noSpace()); // etcd's capped applier: no new data while NOSPACE is raised
      } else if (req.put) {
        this.checkPutAuth(caller, req.put);
        checkPut(req.put, (k, end) => this.store.rangeCurrent(k, end), this.lessor);
        const txn = this.store.write();
        const resp = applyPut(txn, req.put);
        txn.end();
        this.answer(waiter, resp);
      } else if (req.deleteRange) {
        this.checkDeleteAuth(caller, req.deleteRange);
        const txn = this.store.write();
        const resp = applyDeleteRange(txn, req.deleteRange);
        txn.end();
        this.answer(waiter, resp);
      } else if (req.txn) {
        this.checkTxn(caller, req.txn);
        return this.txns.execute(req.txn).then((resp) => this.answer(waiter, resp), (err) => this.refuse(waiter, mvccError(err)));
      } else if (req.compaction) {
        const { physical } = this.store.compact(toNumber(req.compaction.revision));
        const resp: etcdserverpb.ICompactionResponse = { header: { revision: this.store.currentRevision } };
        if (req.compaction.physical) physical.then(() => this.answer(waiter, resp), (err) => waiter?.reject(err));
        else this.answer(waiter, resp);
      } else if (req.leaseGrant) {
        const id = toBigInt(req.leaseGrant.ID);
        try {
          const lease = this.lessor.grant(id, toNumber(req.leaseGrant.TTL));
          this.answer(waiter, { header: { revision: this.store.currentRevision }, ID: req.leaseGrant.ID, TTL: lease.ttlSeconds, error: '' });
        } catch (err) {
          if (err instanceof LeaseExistsError) this.refuse(waiter, Errors.leaseExists());
          else throw err;
        }
      } else if (req.leaseRevoke) {
        this.checkLeasePuts(caller, toBigInt(req.leaseRevoke.ID));
        try {
          this.lessor.revoke(toBigInt(req.leaseRevoke.ID), this.store);
          this.answer(waiter, { header: { revision: this.store.currentRevision } });
        } catch (err) {
          if (err instanceof LeaseNotFoundError) this.refuse(waiter, Errors.leaseNotFound());
          else throw err;
        }
      } else if (req.memberAttributes) {
        const id = toBigInt(req.memberAttributes.ID, true);
        const m = this.membership.get(id);
        const peerUrls = req.memberAttributes.peerURLs ?? [];
        if (m) this.membership.put({ ...m, name: req.memberAttributes.name ?? m.name, clientUrls: req.memberAttributes.clientURLs ?? [], peerUrls: peerUrls.length > 0 ? peerUrls : m.peerUrls });
        this.answer(waiter, {});
      } else if (req.memberUpdate) {
        const id = toBigInt(req.memberUpdate.ID, true);
        const m = this.membership.get(id);
        if (m === undefined) {
          this.refuse(waiter, Errors.memberNotFound());
        } else {
          const updated = { ...m, peerUrls: req.memberUpdate.peerURLs ?? [] };
          this.membership.put(updated);
          if (id !== this.meta.memberId) this.transport?.updatePeer(id, updated.peerUrls);
          this.answer(waiter, { header: { revision: this.store.currentRevision }, members: this.memberList() });
        }
      } else if (req.alarm) {
        const a: Alarm = { memberId: toBigInt(req.alarm.memberID, true), type: (req.alarm.alarm ?? 0) as AlarmType };
        const Action = etcdserverpb.AlarmRequest.AlarmAction;
        let changed: Alarm | undefined;
        if (req.alarm.action === Action.ACTIVATE) changed = this.alarms.activate(a);
        else if (req.alarm.action === Action.DEACTIVATE) changed = this.alarms.deactivate(a);
        if (changed) this.log.warn({ member_id: idToHex(a.memberId), alarm: a.type, action: req.alarm.action }, 'alarm changed');
        this.answer(waiter, { header: { revision: this.store.currentRevision }, alarms: this.alarmsToWire(changed ? [changed] : []) });
      } else if (req.authenticate) {
        const a = req.authenticate;
        const user = this.auth.user(a.name ?? '');
        if (!this.auth.enabled) this.refuse(waiter, AuthErrors.authNotEnabled());
        else if (user === undefined || user.noPassword) this.refuse(waiter, AuthErrors.authFailed());
        else if (toNumber(a.checkedRevision) !== this.auth.revision) this.refuse(waiter, AuthErrors.oldRevision());
        else {
          if (a.simpleToken && this.tokens instanceof SimpleTokens && e.index > this.tokenFloor) this.tokens.add(a.simpleToken, user.name);
          this.answer(waiter, { revision: this.auth.revision });
        }
      } else if (this.applyAuthChange(req, caller)) {
        this.answer(waiter, { header: { revision: this.store.currentRevision } });
      } else {
        throw new Error(`log entry ${e.index} holds no known request`);
      }
    } catch (err) {
      this.refuse(waiter, mvccError(err));
    }
    return undefined;
  }

  /** Answers the proposer of an applied entry, if it waits here. */
  private answer(waiter: Waiter | undefined, resp: unknown): void {
    waiter?.resolve(resp);
  }

  /** Fails the proposer of an entry whose request apply refused (an etcd error: the entry still counts as applied). */
  private refuse(waiter: Waiter | undefined, err: unknown): void {
    if (!(err instanceof EtcdError)) throw err; // not a client error: a bug; stop before corrupting more
    this.counters.proposalsFailed++;
    waiter?.reject(err);
  }

  /** Applies a change to users, roles or the auth switch (root only once auth is on); false if `req` is none. */
  private applyAuthChange(req: cairnpb.IInternalRequest, caller: Caller): boolean {
    const a = this.auth;
    const buf = (b: Uint8Array | null | undefined): Buffer => (b ? asBuffer(b) : Buffer.alloc(0));
    let change: (() => void) | undefined;
    if (req.authEnable) change = () => a.enable();
    else if (req.authDisable) change = () => a.disable();
    else if (req.userAdd) change = () => a.userAdd(req.userAdd!.name ?? '', req.userAdd!.passwordHash ?? '', req.userAdd!.noPassword === true);
    else if (req.userDelete) change = () => a.userDelete(req.userDelete!.name ?? '');
    else if (req.userChangePassword) change = () => a.userChangePassword(req.userChangePassword!.name ?? '', req.userChangePassword!.passwordHash ?? '');
    else if (req.userGrantRole) change = () => a.userGrantRole(req.userGrantRole!.user ?? '', req.userGrantRole!.role ?? '');
    else if (req.userRevokeRole) change = () => a.userRevokeRole(req.userRevokeRole!.name ?? '', req.userRevokeRole!.role ?? '');
    else if (req.roleAdd) change = () => a.roleAdd(req.roleAdd!.name ?? '');
    else if (req.roleDelete) change = () => a.roleDelete(req.roleDelete!.role ?? '');
    else if (req.roleGrantPermission) {
      const p = req.roleGrantPermission.perm;
      change = () => a.roleGrantPermission(req.roleGrantPermission!.name ?? '', { permType: p?.permType ?? 0, key: buf(p?.key), rangeEnd: buf(p?.rangeEnd) });
    } else if (req.roleRevokePermission) {
      change = () => a.roleRevokePermission(req.roleRevokePermission!.role ?? '', buf(req.roleRevokePermission!.key), buf(req.roleRevokePermission!.rangeEnd));
    }
    if (change === undefined) return false;
    a.checkAdmin(caller);
    change();
    return true;
  }

  private waitApplied(index: number): Promise<void> {
    if (this.applied >= index) return Promise.resolve();
    return new Promise((resolve) => this.appliedWaiters.push({ index, resolve }));
  }

  private notifyApplied(): void {
    if (this.appliedWaiters.length === 0) return;
    let kept = 0;
    for (const w of this.appliedWaiters) {
      if (w.index <= this.applied) w.resolve();
      else this.appliedWaiters[kept++] = w;
    }
    this.appliedWaiters.length = kept;
  }

  /** A Raft snapshot at the applied index: the log behind it shrinks, and WAL segments go once LevelDB is durable. */
  private takeSnapshot(): void {
    if (this.snapshotting) return;
    this.snapshotting = true;
    const applied = this.applied;
    this.snapshotIndex = applied;
    void (async () => {
      try {
        // LevelDB must hold everything up to `applied`, durably, before the WAL says a
        // snapshot covers it: after a restart Raft replays only the entries after the mark,
        // so a mark ahead of the store would skip the entries in between.
        await this.backend.sync();
        const index = (this.raftLog as RaftLog).snapshot(applied);
        if (index === undefined) return;
        this.log.info({ index, log_first_index: (this.raftLog as RaftLog).firstIndex }, 'took a raft snapshot');
        await this.wal.sync();
        await this.wal.releaseTo(Math.min(index, this.store.consistentIndex));
      } catch (e) {
        fatal(this.log, e, 'taking a snapshot failed');
      } finally {
        this.snapshotting = false;
      }
    })();
  }

  /**
   * Replaces this member's state with a leader's snapshot stream: received into a file and
   * checked (sha256) first, then swapped in as a whole LevelDB, then everything in memory is
   * reloaded from it. Apply waits meanwhile.
   */
  async installSnapshot(data: AsyncIterable<Buffer>): Promise<void> {
    this.installing = true;
    const file = join(this.config.dataDir, 'member', 'snapshot.incoming');
    try {
      while (this.applying) await new Promise((r) => setTimeout(r, 2));
      await receiveSnapshotFile(data, file);
      await this.store.settle();
      await this.backend.replaceWith(async (fresh) => {
        await loadSnapshotFile(file, (entries) => fresh.batch(entries.map(([key, value]) => ({ type: 'put' as const, key, value }))));
      });
      await this.store.reload();
      await this.lessor.load(this.store);
      await this.alarms.load();
      await this.auth.load();
      this.tokens.clear();
      await this.membership.load([]);
      for (const m of this.membership.list()) {
        if (m.id !== this.meta.memberId && this.transport && !this.transport.stats().has(m.id) && m.peerUrls.length > 0) this.transport.addPeer(m.id, m.peerUrls);
      }
      this.applied = this.store.consistentIndex;
      this.snapshotIndex = this.applied;
      this.leaseExpiry.resetAll();
      this.watchHub.resyncAll();
      this.log.info({ applied_index: this.applied, revision: this.store.currentRevision }, 'installed a snapshot');
    } finally {
      await rm(file, { force: true });
      this.installing = false;
      if (this.applyQueue.length > 0) void this.runApply();
    }
  }

  /** Makes the store durable up to `index`, then drops WAL segments it no longer needs. */
  private async releaseWal(index: number): Promise<void> {
    this.releasedAt = index;
    try {
      await this.wal.sync(); // the snapshot mark, if any, before the entries it replaces go
      await this.backend.sync();
      await this.wal.releaseTo(Math.min(index, this.store.consistentIndex));
    } catch (e) {
      fatal(this.log, e, 'releasing WAL segments failed');
    }
  }

  /** Stops taking requests, lets in-flight work finish, and closes storage. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.leaseExpiry.stop();
    this.watchHub.stop();
    if (this.timeoutTimer) clearInterval(this.timeoutTimer);
    if (this.announceTimer) clearInterval(this.announceTimer);
    await this.raftLog.stop();
    await this.transport?.stop();
    await this.waitApplied(this.raftLog.commitIndex);
    await this.store.settle();
    for (const w of this.waiters.values()) w.reject(Errors.stopped());
    this.waiters.clear();
    await this.wal.close();
    await this.backend.sync().catch(() => undefined);
    await this.backend.close();
  }
}

function putCost(r: etcdserverpb.IPutRequest): number {
  return (r.key?.length ?? 0) + (r.value?.length ?? 0) + 64;
}

function txnCost(r: etcdserverpb.ITxnRequest): number {
  let cost = 0;
  for (const op of [...(r.success ?? []), ...(r.failure ?? [])]) {
    if (op.requestPut) cost += putCost(op.requestPut);
    else if (op.requestTxn) cost += txnCost(op.requestTxn);
  }
  return cost;
}

function fatal(log: Logger, err: unknown, msg: string): never {
  log.fatal({ err }, msg);
  // A storage or apply failure leaves memory and disk out of step: stop rather than serve.
  process.exit(1);
}
