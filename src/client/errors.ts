import { status as Status } from '@grpc/grpc-js';

// Errors as typed classes. Every error carries the gRPC status code and etcd's message
// (`details`), and the class is chosen from etcd's exact message text (clients match on
// those strings: see etcd's api/v3rpc/rpctypes/error.go), else from the status code.

export class EtcdError extends Error {
  constructor(
    /** gRPC status code (grpc.status). */
    readonly code: number,
    /** The server's message, e.g. "etcdserver: mvcc: required revision has been compacted". */
    readonly details: string,
    options?: { cause?: unknown },
  ) {
    super(details, options);
    this.name = new.target.name;
  }
}

// Keys and requests
export class EmptyKeyError extends EtcdError {}
export class KeyNotFoundError extends EtcdError {}
export class ValueProvidedError extends EtcdError {}
export class LeaseProvidedError extends EtcdError {}
export class TooManyOpsError extends EtcdError {}
export class DuplicateKeyError extends EtcdError {}
export class RequestTooLargeError extends EtcdError {}
export class TooManyRequestsError extends EtcdError {}
export class InvalidSortOptionError extends EtcdError {}
// Revisions
export class CompactedError extends EtcdError {
  /** For a watch: the compaction revision the server reported (0 if unknown). */
  compactRevision = 0;
}
export class FutureRevisionError extends EtcdError {}
export class NoSpaceError extends EtcdError {}
// Leases
export class LeaseNotFoundError extends EtcdError {}
export class LeaseExistsError extends EtcdError {}
export class LeaseTTLTooLargeError extends EtcdError {}
// Cluster
export class MemberExistsError extends EtcdError {}
export class PeerURLExistsError extends EtcdError {}
export class MemberNotFoundError extends EtcdError {}
export class MemberBadURLsError extends EtcdError {}
export class MemberNotEnoughStartedError extends EtcdError {}
export class MemberNotLearnerError extends EtcdError {}
export class LearnerNotReadyError extends EtcdError {}
export class TooManyLearnersError extends EtcdError {}
// Leadership and availability
export class NoLeaderError extends EtcdError {}
export class NotLeaderError extends EtcdError {}
export class LeaderChangedError extends EtcdError {}
export class NotCapableError extends EtcdError {}
export class StoppedError extends EtcdError {}
export class RequestTimedOutError extends EtcdError {}
export class UnhealthyClusterError extends EtcdError {}
export class CorruptError extends EtcdError {}
// Auth
export class PermissionDeniedError extends EtcdError {}
export class AuthFailedError extends EtcdError {}
export class InvalidAuthTokenError extends EtcdError {}
/** Users or roles changed after the token was issued (JWT tokens): authenticate again. The request was not applied. */
export class AuthOldRevisionError extends EtcdError {}
export class AuthNotEnabledError extends EtcdError {}
export class UserNotFoundError extends EtcdError {}
export class RoleNotFoundError extends EtcdError {}
// By status code, when the message is not one of etcd's
export class CanceledError extends EtcdError {}
export class DeadlineExceededError extends EtcdError {}
export class UnavailableError extends EtcdError {}
export class UnimplementedError extends EtcdError {}
/** The client was closed while the call was in flight. */
export class ClientClosedError extends EtcdError {}

type ErrorClass = new (code: number, details: string, options?: { cause?: unknown }) => EtcdError;

const BY_MESSAGE: ReadonlyMap<string, ErrorClass> = new Map<string, ErrorClass>([
  ['etcdserver: key is not provided', EmptyKeyError],
  ['etcdserver: key not found', KeyNotFoundError],
  ['etcdserver: value is provided', ValueProvidedError],
  ['etcdserver: lease is provided', LeaseProvidedError],
  ['etcdserver: too many operations in txn request', TooManyOpsError],
  ['etcdserver: duplicate key given in txn request', DuplicateKeyError],
  ['etcdserver: invalid sort option', InvalidSortOptionError],
  ['etcdserver: request is too large', RequestTooLargeError],
  ['etcdserver: too many requests', TooManyRequestsError],
  ['etcdserver: mvcc: required revision has been compacted', CompactedError],
  ['etcdserver: mvcc: required revision is a future revision', FutureRevisionError],
  ['etcdserver: mvcc: database space exceeded', NoSpaceError],
  ['etcdserver: requested lease not found', LeaseNotFoundError],
  ['etcdserver: lease already exists', LeaseExistsError],
  ['etcdserver: too large lease TTL', LeaseTTLTooLargeError],
  ['etcdserver: member ID already exist', MemberExistsError],
  ['etcdserver: Peer URLs already exists', PeerURLExistsError],
  ['etcdserver: member not found', MemberNotFoundError],
  ['etcdserver: given member URLs are invalid', MemberBadURLsError],
  ['etcdserver: re-configuration failed due to not enough started members', MemberNotEnoughStartedError],
  ['etcdserver: can only promote a learner member', MemberNotLearnerError],
  ['etcdserver: can only promote a learner member which is in sync with leader', LearnerNotReadyError],
  ['etcdserver: too many learner members in cluster', TooManyLearnersError],
  ['etcdserver: no leader', NoLeaderError],
  ['etcdserver: not leader', NotLeaderError],
  ['etcdserver: leader changed', LeaderChangedError],
  ['etcdserver: not capable', NotCapableError],
  ['etcdserver: server stopped', StoppedError],
  ['etcdserver: request timed out', RequestTimedOutError],
  ['etcdserver: request timed out, possibly due to previous leader failure', RequestTimedOutError],
  ['etcdserver: request timed out, possibly due to connection lost', RequestTimedOutError],
  ['etcdserver: unhealthy cluster', UnhealthyClusterError],
  ['etcdserver: corrupt cluster', CorruptError],
  ['etcdserver: permission denied', PermissionDeniedError],
  ['etcdserver: authentication failed, invalid user ID or password', AuthFailedError],
  ['etcdserver: invalid auth token', InvalidAuthTokenError],
  ['auth: revision in header is old', AuthOldRevisionError],
  ['etcdserver: authentication is not enabled', AuthNotEnabledError],
  ['etcdserver: user name not found', UserNotFoundError],
  ['etcdserver: role name not found', RoleNotFoundError],
]);

const BY_CODE: ReadonlyMap<number, ErrorClass> = new Map<number, ErrorClass>([
  [Status.CANCELLED, CanceledError],
  [Status.DEADLINE_EXCEEDED, DeadlineExceededError],
  [Status.UNAVAILABLE, UnavailableError],
  [Status.UNIMPLEMENTED, UnimplementedError],
  [Status.PERMISSION_DENIED, PermissionDeniedError],
]);

/** The typed error for a status code and message. */
export function etcdError(code: number, details: string, cause?: unknown): EtcdError {
  const cls = BY_MESSAGE.get(details) ?? BY_CODE.get(code) ?? EtcdError;
  return new cls(code, details, cause === undefined ? undefined : { cause });
}

interface GrpcLikeError {
  code?: unknown;
  details?: unknown;
  message?: unknown;
}

/** Convert anything thrown by grpc-js (or by us) into an EtcdError. */
export function fromGrpc(err: unknown): EtcdError {
  if (err instanceof EtcdError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as GrpcLikeError;
  const code = typeof e.code === 'number' ? e.code : Status.UNKNOWN;
  const details = typeof e.details === 'string' ? e.details : typeof e.message === 'string' ? e.message : String(err);
  return etcdError(code, details, err);
}
