import { etcdserverpb } from '../gen/proto';
import { header, num, toULong, ubig, type ResponseHeader } from './convert';
import { EtcdError, fromGrpc } from './errors';
import * as M from './methods';
import { abortError, deadlineError, type CallOptions, type Pool } from './pool';

// Cluster and Maintenance: thin typed wrappers.

export interface Member {
  id: bigint;
  /** Empty for a member added but not started yet. */
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

function member(m: M.Member): Member {
  return { id: ubig(m.ID), name: m.name ?? '', peerUrls: m.peerURLs ?? [], clientUrls: m.clientURLs ?? [], isLearner: m.isLearner === true };
}

export interface MemberList {
  header: ResponseHeader;
  members: Member[];
}

/** `client.cluster` */
export class ClusterClient {
  constructor(private readonly pool: Pool) {}

  async memberList(opts?: CallOptions): Promise<MemberList> {
    const r = await this.pool.unary(M.Cluster.MemberList, {}, opts);
    return { header: header(r.header), members: (r.members ?? []).map(member) };
  }

  async memberAdd(peerUrls: string[], opts: CallOptions & { isLearner?: boolean } = {}): Promise<MemberList & { member: Member }> {
    const r = await this.pool.unary(M.Cluster.MemberAdd, { peerURLs: peerUrls, isLearner: opts.isLearner === true }, opts);
    if (!r.member) throw new EtcdError(13, 'cairn client: MemberAdd response without the added member');
    return { header: header(r.header), member: member(r.member), members: (r.members ?? []).map(member) };
  }

  async memberRemove(id: bigint, opts?: CallOptions): Promise<MemberList> {
    const r = await this.pool.unary(M.Cluster.MemberRemove, { ID: toULong(id) }, opts);
    return { header: header(r.header), members: (r.members ?? []).map(member) };
  }

  async memberUpdate(id: bigint, peerUrls: string[], opts?: CallOptions): Promise<MemberList> {
    const r = await this.pool.unary(M.Cluster.MemberUpdate, { ID: toULong(id), peerURLs: peerUrls }, opts);
    return { header: header(r.header), members: (r.members ?? []).map(member) };
  }

  async memberPromote(id: bigint, opts?: CallOptions): Promise<MemberList> {
    const r = await this.pool.unary(M.Cluster.MemberPromote, { ID: toULong(id) }, opts);
    return { header: header(r.header), members: (r.members ?? []).map(member) };
  }
}

export interface MemberStatus {
  header: ResponseHeader;
  version: string;
  dbSize: number;
  dbSizeInUse: number;
  leader: bigint;
  raftIndex: bigint;
  raftTerm: bigint;
  raftAppliedIndex: bigint;
  errors: string[];
  isLearner: boolean;
}

export type AlarmType = 'none' | 'nospace' | 'corrupt';
export interface Alarm {
  memberId: bigint;
  alarm: AlarmType;
}

const ALARM_NAMES: AlarmType[] = ['none', 'nospace', 'corrupt'];

/** Per-member calls: `endpoint` names the member (default: the one in use, with failover). */
export interface MemberCallOptions extends CallOptions {
  endpoint?: string;
}

/** `client.maintenance` */
export class MaintenanceClient {
  constructor(private readonly pool: Pool) {}

  async status(opts: MemberCallOptions = {}): Promise<MemberStatus> {
    const r = await this.pool.unary(M.Maintenance.Status, {}, opts, { endpoint: opts.endpoint });
    return {
      header: header(r.header),
      version: r.version ?? '',
      dbSize: num(r.dbSize),
      dbSizeInUse: num(r.dbSizeInUse),
      leader: ubig(r.leader),
      raftIndex: ubig(r.raftIndex),
      raftTerm: ubig(r.raftTerm),
      raftAppliedIndex: ubig(r.raftAppliedIndex),
      errors: r.errors ?? [],
      isLearner: r.isLearner === true,
    };
  }

  /** Hash of the key space up to `revision` (0: the newest) on one member. */
  async hashKV(revision = 0, opts: MemberCallOptions = {}): Promise<{ header: ResponseHeader; hash: number; compactRevision: number }> {
    const r = await this.pool.unary(M.Maintenance.HashKV, { revision: revision }, opts, { endpoint: opts.endpoint });
    return { header: header(r.header), hash: r.hash ?? 0, compactRevision: num(r.compactRevision) };
  }

  async defragment(opts: MemberCallOptions = {}): Promise<{ header: ResponseHeader }> {
    const r = await this.pool.unary(M.Maintenance.Defragment, {}, opts, { endpoint: opts.endpoint });
    return { header: header(r.header) };
  }

  /** List alarms (default), or activate / deactivate one. */
  async alarm(
    opts: CallOptions & { action?: 'get' | 'activate' | 'deactivate'; memberId?: bigint; alarm?: AlarmType } = {},
  ): Promise<{ header: ResponseHeader; alarms: Alarm[] }> {
    const A = etcdserverpb.AlarmRequest.AlarmAction;
    const action = opts.action === 'activate' ? A.ACTIVATE : opts.action === 'deactivate' ? A.DEACTIVATE : A.GET;
    const r = await this.pool.unary(
      M.Maintenance.Alarm,
      { action, memberID: toULong(opts.memberId ?? 0n), alarm: ALARM_NAMES.indexOf(opts.alarm ?? 'none') },
      opts,
      { idempotent: action === A.GET },
    );
    return { header: header(r.header), alarms: (r.alarms ?? []).map((a) => ({ memberId: ubig(a.memberID), alarm: ALARM_NAMES[a.alarm ?? 0] ?? 'none' })) };
  }

  async moveLeader(targetId: bigint, opts: MemberCallOptions = {}): Promise<{ header: ResponseHeader }> {
    const r = await this.pool.unary(M.Maintenance.MoveLeader, { targetID: toULong(targetId) }, opts, { endpoint: opts.endpoint });
    return { header: header(r.header) };
  }

  /**
   * The member's backend as a stream of chunks: `for await (const chunk of client.maintenance.snapshot())`.
   * `timeoutMs` bounds the whole transfer (default: none).
   */
  async *snapshot(opts: MemberCallOptions = {}): AsyncGenerator<Buffer, void, undefined> {
    const deadlineMs = opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs;
    const ep = await this.pool.pickReady(deadlineMs ?? Date.now() + this.pool.requestTimeoutMs, opts.signal, opts.endpoint);
    const call = this.pool.serverStream(ep, M.Maintenance.Snapshot, {}, deadlineMs);
    const onAbort = (): void => call.cancel();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const r of call as AsyncIterable<M.SnapshotResponse>) {
        const blob = r.blob;
        if (blob && blob.length > 0) yield Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
      }
    } catch (e) {
      if (opts.signal?.aborted) throw abortError(opts.signal);
      if (deadlineMs !== undefined && Date.now() >= deadlineMs) throw deadlineError(e);
      throw fromGrpc(e);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      call.cancel();
    }
  }
}
