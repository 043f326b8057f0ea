// The vocabulary of the Raft core. Names follow the Raft paper and etcd-io/raft.
//
// Member IDs are full uint64 values, so they are `bigint` everywhere (never a JS
// number, which would lose precision above 2^53). Terms and indexes are JS numbers:
// 2^53 entries or terms is far beyond any realistic lifetime, and every place where
// they enter the core from outside asserts Number.isSafeInteger.

/** A member ID (uint64). 0n means "no node". */
export type NodeId = bigint;
export const None: NodeId = 0n;

export enum EntryType {
  Normal = 0,
  ConfChange = 1,
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must be durable before any message of the same Ready is sent. */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

/** Volatile state, reported in Ready only when it changes. */
export interface SoftState {
  lead: NodeId;
  raftState: StateType;
}

export enum StateType {
  Follower = 0,
  Candidate = 1,
  Leader = 2,
  PreCandidate = 3,
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface SnapshotMetadata {
  index: number;
  term: number;
  confState: ConfState;
}

export interface Snapshot {
  /** Application state as of metadata.index, opaque to raft. */
  data: Uint8Array;
  metadata: SnapshotMetadata;
}

export enum ConfChangeType {
  /** Add a voter, or promote an existing learner to voter. */
  AddNode = 0,
  RemoveNode = 1,
  /** Add a learner (non-voting member), or demote a voter to learner. */
  AddLearnerNode = 2,
}

export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  context: Uint8Array;
}

export enum MessageType {
  /** Local: start an election. */
  Hup = 0,
  /** Local: leader sends heartbeats. */
  Beat = 1,
  /** Proposal: local, or forwarded by a follower to the leader. */
  Prop = 2,
  App = 3,
  AppResp = 4,
  Vote = 5,
  VoteResp = 6,
  Snap = 7,
  Heartbeat = 8,
  HeartbeatResp = 9,
  /** Local: the transport could not reach `from`. */
  Unreachable = 10,
  /** Local: the transport reports whether a snapshot reached `from`. */
  SnapStatus = 11,
  /** Local: leader checks it still hears a quorum. */
  CheckQuorum = 12,
  /** Local or forwarded: transfer leadership to `from`. */
  TransferLeader = 13,
  /** Leader tells a caught-up transferee to campaign at once. */
  TimeoutNow = 14,
  ReadIndex = 15,
  ReadIndexResp = 16,
  PreVote = 17,
  PreVoteResp = 18,
}

export const messageTypeCount = 19;

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** App: term of the entry at `index`. AppResp reject: term of the hint entry. Vote: candidate's last log term. */
  logTerm: number;
  /** App: index preceding `entries`. AppResp: last index matched (or rejected index). Vote: last log index. ReadIndexResp: read index. */
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  snapshot: Snapshot | null;
  /** Heartbeat round id, ReadIndex request context, or the campaign-transfer marker. */
  context: Uint8Array;
}

export interface ReadState {
  /** Serve the read once the applied index reaches this index. */
  index: number;
  requestCtx: Uint8Array;
}

export const emptyBytes: Uint8Array = new Uint8Array(0);

/** Build a message with defaults for every field not given. */
export function makeMessage(m: Partial<Message> & { type: MessageType }): Message {
  return {
    type: m.type,
    from: m.from ?? None,
    to: m.to ?? None,
    term: m.term ?? 0,
    logTerm: m.logTerm ?? 0,
    index: m.index ?? 0,
    entries: m.entries ?? [],
    commit: m.commit ?? 0,
    reject: m.reject ?? false,
    rejectHint: m.rejectHint ?? 0,
    snapshot: m.snapshot ?? null,
    context: m.context ?? emptyBytes,
  };
}

export function emptyHardState(): HardState {
  return { term: 0, vote: None, commit: 0 };
}

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === None && hs.commit === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export function emptySnapshot(): Snapshot {
  return { data: emptyBytes, metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } } };
}

export function isEmptySnapshot(s: Snapshot | null): boolean {
  return s === null || s.metadata.index === 0;
}

export function isLocalMessage(t: MessageType): boolean {
  return (
    t === MessageType.Hup ||
    t === MessageType.Beat ||
    t === MessageType.Unreachable ||
    t === MessageType.SnapStatus ||
    t === MessageType.CheckQuorum
  );
}

export function isResponseMessage(t: MessageType): boolean {
  return (
    t === MessageType.AppResp ||
    t === MessageType.VoteResp ||
    t === MessageType.HeartbeatResp ||
    t === MessageType.Unreachable ||
    t === MessageType.PreVoteResp
  );
}

export function voteResponseType(t: MessageType): MessageType {
  if (t === MessageType.Vote) return MessageType.VoteResp;
  if (t === MessageType.PreVote) return MessageType.PreVoteResp;
  throw new Error(`not a vote message: ${MessageType[t]}`);
}
