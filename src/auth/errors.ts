import { Code, EtcdError } from '../server/errors';

// The auth errors clients see, with etcd 3.4's codes and messages (etcdctl and clientv3
// match on the text). etcd 3.4 has no gRPC status for a stale auth revision: it reaches
// clients as Unknown with the auth package's own message, and so it does here.

const e = (code: Code, message: string) => (): EtcdError => new EtcdError(code, message);

export const AuthErrors = {
  rootUserNotExist: e(Code.FailedPrecondition, 'etcdserver: root user does not exist'),
  rootRoleNotExist: e(Code.FailedPrecondition, 'etcdserver: root user does not have root role'),
  userAlreadyExist: e(Code.FailedPrecondition, 'etcdserver: user name already exists'),
  userEmpty: e(Code.InvalidArgument, 'etcdserver: user name is empty'),
  userNotFound: e(Code.FailedPrecondition, 'etcdserver: user name not found'),
  roleAlreadyExist: e(Code.FailedPrecondition, 'etcdserver: role name already exists'),
  roleNotFound: e(Code.FailedPrecondition, 'etcdserver: role name not found'),
  roleEmpty: e(Code.InvalidArgument, 'etcdserver: role name is empty'),
  authFailed: e(Code.InvalidArgument, 'etcdserver: authentication failed, invalid user ID or password'),
  permissionDenied: e(Code.PermissionDenied, 'etcdserver: permission denied'),
  roleNotGranted: e(Code.FailedPrecondition, 'etcdserver: role is not granted to the user'),
  permissionNotGranted: e(Code.FailedPrecondition, 'etcdserver: permission is not granted to the role'),
  authNotEnabled: e(Code.FailedPrecondition, 'etcdserver: authentication is not enabled'),
  invalidAuthToken: e(Code.Unauthenticated, 'etcdserver: invalid auth token'),
  invalidAuthMgmt: e(Code.InvalidArgument, 'etcdserver: invalid auth management'),
  oldRevision: e(Code.Unknown, 'auth: revision in header is old'),
};
