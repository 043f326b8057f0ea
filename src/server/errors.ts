// Errors that reach clients, with etcd's gRPC status codes and exact messages: clients
// (etcdctl, clientv3, etcd3) match on these strings.

export const enum Code {
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
}

export class EtcdError extends Error {
  constructor(readonly code: Code, message: string) {
    super(message);
    this.name = 'EtcdError';
  }
}

const e = (code: Code, message: string) => (): EtcdError => new EtcdError(code, message);

export const Errors = {
  emptyKey: e(Code.InvalidArgument, 'etcdserver: key is not provided'),
  keyNotFound: e(Code.InvalidArgument, 'etcdserver: key not found'),
  valueProvided: e(Code.InvalidArgument, 'etcdserver: value is provided'),
  leaseProvided: e(Code.InvalidArgument, 'etcdserver: lease is provided'),
  tooManyOps: e(Code.InvalidArgument, 'etcdserver: too many operations in txn request'),
  duplicateKey: e(Code.InvalidArgument, 'etcdserver: duplicate key given in txn request'),
  invalidSortOption: e(Code.InvalidArgument, 'etcdserver: invalid sort option'),
  compacted: e(Code.OutOfRange, 'etcdserver: mvcc: required revision has been compacted'),
  futureRevision: e(Code.OutOfRange, 'etcdserver: mvcc: required revision is a future revision'),
  noSpace: e(Code.ResourceExhausted, 'etcdserver: mvcc: database space exceeded'),
  leaseNotFound: e(Code.NotFound, 'etcdserver: requested lease not found'),
  leaseExists: e(Code.FailedPrecondition, 'etcdserver: lease already exists'),
  leaseTTLTooLarge: e(Code.OutOfRange, 'etcdserver: too large lease TTL'),
  requestTooLarge: e(Code.InvalidArgument, 'etcdserver: request is too large'),
  tooManyRequests: e(Code.ResourceExhausted, 'etcdserver: too many requests'),
  noLeader: e(Code.Unavailable, 'etcdserver: no leader'),
  notLeader: e(Code.FailedPrecondition, 'etcdserver: not leader'),
  leaderChanged: e(Code.Unavailable, 'etcdserver: leader changed'),
  stopped: e(Code.Unavailable, 'etcdserver: server stopped'),
  timeout: e(Code.Unavailable, 'etcdserver: request timed out'),
  corrupt: e(Code.DataLoss, 'etcdserver: corrupt cluster'),
  badLeaderTransferee: e(Code.FailedPrecondition, 'etcdserver: bad leader transferee'),
  timeoutLeaderTransfer: e(Code.DeadlineExceeded, 'etcdserver: request timed out, leader transfer took too long'),
  notEnoughStarted: e(Code.FailedPrecondition, 'etcdserver: re-configuration failed due to not enough started members'),
  memberExists: e(Code.FailedPrecondition, 'etcdserver: member ID already exist'),
  peerUrlExists: e(Code.FailedPrecondition, 'etcdserver: Peer URLs already exists'),
  memberNotFound: e(Code.NotFound, 'etcdserver: member not found'),
  memberBadUrls: e(Code.InvalidArgument, 'etcdserver: given member URLs are invalid'),
  memberNotLearner: e(Code.FailedPrecondition, 'etcdserver: can only promote a learner member'),
  notImplemented: (what: string): EtcdError => new EtcdError(Code.Unimplemented, `cairn: ${what} is not implemented yet`),
};
