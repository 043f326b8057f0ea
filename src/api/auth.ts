import type { sendUnaryData, ServerUnaryCall, ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { etcdserverpb } from '../gen/proto';
import { CairnServer } from '../server/server';
import { method } from './codec';
import { ErrorMapper } from './status';
import { noCheck, unaryHandler } from './unary';

// etcd's Auth service. Authenticate is open to anyone (it is how one gets a token); every
// other call needs the root role once auth is on, except reading one's own user and the
// roles one holds. Changes go through the log; passwords only as bcrypt hashes.

const pb = etcdserverpb;
const name = (m: string): string => `/etcdserverpb.Auth/${m}`;

export const authService: ServiceDefinition = {
  AuthEnable: method(name('AuthEnable'), pb.AuthEnableRequest, pb.AuthEnableResponse),
  AuthDisable: method(name('AuthDisable'), pb.AuthDisableRequest, pb.AuthDisableResponse),
  Authenticate: method(name('Authenticate'), pb.AuthenticateRequest, pb.AuthenticateResponse),
  UserAdd: method(name('UserAdd'), pb.AuthUserAddRequest, pb.AuthUserAddResponse),
  UserGet: method(name('UserGet'), pb.AuthUserGetRequest, pb.AuthUserGetResponse),
  UserList: method(name('UserList'), pb.AuthUserListRequest, pb.AuthUserListResponse),
  UserDelete: method(name('UserDelete'), pb.AuthUserDeleteRequest, pb.AuthUserDeleteResponse),
  UserChangePassword: method(name('UserChangePassword'), pb.AuthUserChangePasswordRequest, pb.AuthUserChangePasswordResponse),
  UserGrantRole: method(name('UserGrantRole'), pb.AuthUserGrantRoleRequest, pb.AuthUserGrantRoleResponse),
  UserRevokeRole: method(name('UserRevokeRole'), pb.AuthUserRevokeRoleRequest, pb.AuthUserRevokeRoleResponse),
  RoleAdd: method(name('RoleAdd'), pb.AuthRoleAddRequest, pb.AuthRoleAddResponse),
  RoleGet: method(name('RoleGet'), pb.AuthRoleGetRequest, pb.AuthRoleGetResponse),
  RoleList: method(name('RoleList'), pb.AuthRoleListRequest, pb.AuthRoleListResponse),
  RoleDelete: method(name('RoleDelete'), pb.AuthRoleDeleteRequest, pb.AuthRoleDeleteResponse),
  RoleGrantPermission: method(name('RoleGrantPermission'), pb.AuthRoleGrantPermissionRequest, pb.AuthRoleGrantPermissionResponse),
  RoleRevokePermission: method(name('RoleRevokePermission'), pb.AuthRoleRevokePermissionRequest, pb.AuthRoleRevokePermissionResponse),
};

export function authImplementation(member: CairnServer, errors: ErrorMapper): UntypedServiceImplementation {
  const unary = unaryHandler(member, errors);
  const m = member;
  return {
    AuthEnable: unary(noCheck, (_r: unknown, caller) => m.authEnable(caller)),
    AuthDisable: unary(noCheck, (_r: unknown, caller) => m.authDisable(caller)),
    // A stale token sent along must not stand in the way of getting a new one.
    Authenticate: (call: ServerUnaryCall<etcdserverpb.AuthenticateRequest, etcdserverpb.IAuthenticateResponse>, callback: sendUnaryData<etcdserverpb.IAuthenticateResponse>) => {
      m.authenticate(call.request).then(
        (resp) => callback(null, { ...resp, header: m.header() }),
        (e) => callback(errors.toStatus(e)),
      );
    },
    UserAdd: unary(noCheck, (r: etcdserverpb.AuthUserAddRequest, caller) => m.userAdd(r, caller)),
    UserGet: unary(noCheck, (r: etcdserverpb.AuthUserGetRequest, caller) => m.userGet(r, caller)),
    UserList: unary(noCheck, (_r: unknown, caller) => m.userList(caller)),
    UserDelete: unary(noCheck, (r: etcdserverpb.AuthUserDeleteRequest, caller) => m.userDelete(r, caller)),
    UserChangePassword: unary(noCheck, (r: etcdserverpb.AuthUserChangePasswordRequest, caller) => m.userChangePassword(r, caller)),
    UserGrantRole: unary(noCheck, (r: etcdserverpb.AuthUserGrantRoleRequest, caller) => m.userGrantRole(r, caller)),
    UserRevokeRole: unary(noCheck, (r: etcdserverpb.AuthUserRevokeRoleRequest, caller) => m.userRevokeRole(r, caller)),
    RoleAdd: unary(noCheck, (r: etcdserverpb.AuthRoleAddRequest, caller) => m.roleAdd(r, caller)),
    RoleGet: unary(noCheck, (r: etcdserverpb.AuthRoleGetRequest, caller) => m.roleGet(r, caller)),
    RoleList: unary(noCheck, (_r: unknown, caller) => m.roleList(caller)),
    RoleDelete: unary(noCheck, (r: etcdserverpb.AuthRoleDeleteRequest, caller) => m.roleDelete(r, caller)),
    RoleGrantPermission: unary(noCheck, (r: etcdserverpb.AuthRoleGrantPermissionRequest, caller) => m.roleGrantPermission(r, caller)),
    RoleRevokePermission: unary(noCheck, (r: etcdserverpb.AuthRoleRevokePermissionRequest, caller) => m.roleRevokePermission(r, caller)),
  };
}
