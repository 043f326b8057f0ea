import { authpb, etcdserverpb } from '../gen/proto';
import { bufOf, header, toBuf, type KeyLike, type ResponseHeader } from './convert';
import type { Method } from './methods';
import type { CallOptions, Pool } from './pool';

// The Auth service: enabling authentication, users, roles and key-range permissions.
// Credentials for the client's own calls are given in ClientOptions (see pool.ts).

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

interface Codec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(reader: Uint8Array): T;
}

function m<Req, Res>(name: string, idempotent: boolean, req: Codec<Req>, res: Codec<Res>): Method<Req, Res> {
  return {
    path: `/etcdserverpb.Auth/${name}`,
    idempotent,
    serialize: (x: Req) => toBuffer(req.encode(x).finish()),
    deserialize: (b: Buffer) => res.decode(b),
  };
}

const pb = etcdserverpb;

/** Method descriptors of the Auth service (reads are idempotent, as in etcd's clientv3). */
export const AuthMethods = {
  AuthEnable: m<etcdserverpb.IAuthEnableRequest, etcdserverpb.IAuthEnableResponse>('AuthEnable', false, pb.AuthEnableRequest, pb.AuthEnableResponse),
  AuthDisable: m<etcdserverpb.IAuthDisableRequest, etcdserverpb.IAuthDisableResponse>('AuthDisable', false, pb.AuthDisableRequest, pb.AuthDisableResponse),
  Authenticate: m<etcdserverpb.IAuthenticateRequest, etcdserverpb.IAuthenticateResponse>('Authenticate', true, pb.AuthenticateRequest, pb.AuthenticateResponse),
  UserAdd: m<etcdserverpb.IAuthUserAddRequest, etcdserverpb.IAuthUserAddResponse>('UserAdd', false, pb.AuthUserAddRequest, pb.AuthUserAddResponse),
  UserGet: m<etcdserverpb.IAuthUserGetRequest, etcdserverpb.IAuthUserGetResponse>('UserGet', true, pb.AuthUserGetRequest, pb.AuthUserGetResponse),
  UserList: m<etcdserverpb.IAuthUserListRequest, etcdserverpb.IAuthUserListResponse>('UserList', true, pb.AuthUserListRequest, pb.AuthUserListResponse),
  UserDelete: m<etcdserverpb.IAuthUserDeleteRequest, etcdserverpb.IAuthUserDeleteResponse>('UserDelete', false, pb.AuthUserDeleteRequest, pb.AuthUserDeleteResponse),
  UserChangePassword: m<etcdserverpb.IAuthUserChangePasswordRequest, etcdserverpb.IAuthUserChangePasswordResponse>(
    'UserChangePassword', false, pb.AuthUserChangePasswordRequest, pb.AuthUserChangePasswordResponse),
  UserGrantRole: m<etcdserverpb.IAuthUserGrantRoleRequest, etcdserverpb.IAuthUserGrantRoleResponse>('UserGrantRole', false, pb.AuthUserGrantRoleRequest, pb.AuthUserGrantRoleResponse),
  UserRevokeRole: m<etcdserverpb.IAuthUserRevokeRoleRequest, etcdserverpb.IAuthUserRevokeRoleResponse>('UserRevokeRole', false, pb.AuthUserRevokeRoleRequest, pb.AuthUserRevokeRoleResponse),
  RoleAdd: m<etcdserverpb.IAuthRoleAddRequest, etcdserverpb.IAuthRoleAddResponse>('RoleAdd', false, pb.AuthRoleAddRequest, pb.AuthRoleAddResponse),
  RoleGet: m<etcdserverpb.IAuthRoleGetRequest, etcdserverpb.IAuthRoleGetResponse>('RoleGet', true, pb.AuthRoleGetRequest, pb.AuthRoleGetResponse),
  RoleList: m<etcdserverpb.IAuthRoleListRequest, etcdserverpb.IAuthRoleListResponse>('RoleList', true, pb.AuthRoleListRequest, pb.AuthRoleListResponse),
  RoleDelete: m<etcdserverpb.IAuthRoleDeleteRequest, etcdserverpb.IAuthRoleDeleteResponse>('RoleDelete', false, pb.AuthRoleDeleteRequest, pb.AuthRoleDeleteResponse),
  RoleGrantPermission: m<etcdserverpb.IAuthRoleGrantPermissionRequest, etcdserverpb.IAuthRoleGrantPermissionResponse>(
    'RoleGrantPermission', false, pb.AuthRoleGrantPermissionRequest, pb.AuthRoleGrantPermissionResponse),
  RoleRevokePermission: m<etcdserverpb.IAuthRoleRevokePermissionRequest, etcdserverpb.IAuthRoleRevokePermissionResponse>(
    'RoleRevokePermission', false, pb.AuthRoleRevokePermissionRequest, pb.AuthRoleRevokePermissionResponse),
};

export type PermissionType = 'read' | 'write' | 'readwrite';
const PERM_TYPES: PermissionType[] = ['read', 'write', 'readwrite'];

/** A key-range permission of a role: `key` alone, [key, rangeEnd), or from key on (rangeEnd "\0"). */
export interface Permission {
  type: PermissionType;
  key: Buffer;
  /** Empty: the single key; a 0 byte: every key >= key. */
  rangeEnd: Buffer;
}

export interface AuthHeaderResult {
  header: ResponseHeader;
}

/** `client.auth` */
export class AuthClient {
  constructor(private readonly pool: Pool) {}

  private async done<Req>(method: Method<Req, { header?: etcdserverpb.IResponseHeader | null }>, req: Req, opts?: CallOptions): Promise<AuthHeaderResult> {
    const r = await this.pool.unary(method, req, opts);
    return { header: header(r.header) };
  }

  authEnable(opts?: CallOptions): Promise<AuthHeaderResult> {
    return this.done(AuthMethods.AuthEnable, {}, opts);
  }

  authDisable(opts?: CallOptions): Promise<AuthHeaderResult> {
    return this.done(AuthMethods.AuthDisable, {}, opts);
  }

  /** A token for these credentials (the client does this itself when given credentials). */
  async authenticate(name: string, password: string, opts?: CallOptions): Promise<{ header: ResponseHeader; token: string }> {
    const r = await this.pool.unary(AuthMethods.Authenticate, { name, password }, opts);
    return { header: header(r.header), token: r.token ?? '' };
  }

  userAdd(name: string, password: string, opts: CallOptions & { noPassword?: boolean } = {}): Promise<AuthHeaderResult> {
    return this.done(AuthMethods.UserAdd, { name, password, options: opts.noPassword === true ? { noPassword: true } : null }, opts);
  }

  async userGet(name: string, opts?: CallOptions): Promise<{ header: ResponseHeader; roles: string[] }> {
    const r = await this.pool.unary(AuthMethods.UserGet, { name }, opts);
    return { header: header(r.header), roles: r.roles ?? [] };
  }

  async userList(opts?: CallOptions): Promise<{ header: ResponseHeader; users: string[] }> {
    const r = await this.pool.unary(AuthMethods.UserList, {}, opts);
    return { header: header(r.header), users: r.users ?? [] };
  }

  userDelete(name: string, opts?: CallOptions): Promise<AuthHeaderResult> {
    return this.done(AuthMethods.UserDelete, { name }, opts);
  }

  userChangePassword(name: string, password: string, opts?: CallOptions): Promise<AuthHeaderResult> {
    return this.done(AuthMethods.UserChangePassword, { name, password }, opts);
  }

  userGrantRole(user: string, role: string, opts?: CallOptions): Promise<AuthHeaderResult> {
    return this.done(AuthMethods.UserGrantRole, { user, role }, opts);
  }

  userRevokeRole(name: string, role: string, opts?: CallOptions): Promise<AuthHeaderResult> {
    return this.done(AuthMethods.UserRevokeRole, { name, role }, opts);
  }

  roleAdd(name: string, opts?: CallOptions): Promise<AuthHeaderResult> {
    return this.done(AuthMethods.RoleAdd, { name }, opts);
  }

  async roleGet(role: string, opts?: CallOptions): Promise<{ header: ResponseHeader; permissions: Permission[] }> {
    const r = await this.pool.unary(AuthMethods.RoleGet, { role }, opts);
    const permissions = (r.perm ?? []).map((p) => ({ type: PERM_TYPES[p.permType ?? 0] ?? 'read', key: bufOf(p.key), rangeEnd: bufOf(p.rangeEnd) }));
    return { header: header(r.header), permissions };
  }

  async roleList(opts?: CallOptions): Promise<{ header: ResponseHeader; roles: string[] }> {
    const r = await this.pool.unary(AuthMethods.RoleList, {}, opts);
    return { header: header(r.header), roles: r.roles ?? [] };
  }

  roleDelete(role: string, opts?: CallOptions): Promise<AuthHeaderResult> {
    return this.done(AuthMethods.RoleDelete, { role }, opts);
  }

  /** Grant `type` on `key` (rangeEnd empty), [key, rangeEnd), or every key >= key (rangeEnd "\0"). */
  roleGrantPermission(role: string, type: PermissionType, key: KeyLike, rangeEnd: KeyLike = '', opts?: CallOptions): Promise<AuthHeaderResult> {
    const perm: authpb.IPermission = { permType: PERM_TYPES.indexOf(type), key: toBuf(key), rangeEnd: toBuf(rangeEnd) };
    return this.done(AuthMethods.RoleGrantPermission, { name: role, perm }, opts);
  }

  roleRevokePermission(role: string, key: KeyLike, rangeEnd: KeyLike = '', opts?: CallOptions): Promise<AuthHeaderResult> {
    return this.done(AuthMethods.RoleRevokePermission, { role, key: toBuf(key), rangeEnd: toBuf(rangeEnd) }, opts);
  }
}
