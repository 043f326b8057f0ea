import { authpb } from '../gen/proto';
import { Backend } from '../mvcc/backend';
import { AuthErrors } from './errors';

// etcd's auth store: users, roles with key-range permissions, the enabled switch and the
// auth revision. Every change comes through the log and is applied here on every member in
// the same order, so the state (and every permission decision made during apply) is the
// same everywhere. Nothing here reads a clock or hashes a password: hashes are made by the
// proposer, checked by the member a client authenticates with.
//
// LevelDB layout, format version 1:
//   "u" "s"          -> JSON { enabled, revision }
//   "u" "u" <name>   -> authpb.User   (password: the bcrypt hash, or empty)
//   "u" "r" <name>   -> authpb.Role

const AUTH_PREFIX = 0x75; // 'u'
const STATE_KEY = Buffer.from('us', 'latin1');
const USER_PREFIX = Buffer.from('uu', 'latin1');
const ROLE_PREFIX = Buffer.from('ur', 'latin1');

export const ROOT_USER = 'root';
export const ROOT_ROLE = 'root';

export const PermType = authpb.Permission.Type;

export interface User {
  name: string;
  /** bcrypt hash; empty for a user created with no password. */
  passwordHash: string;
  /** Sorted. */
  roles: string[];
  noPassword: boolean;
}

export interface Permission {
  permType: authpb.Permission.Type;
  key: Buffer;
  /** Empty: just `key`; "\0": every key from `key` on. */
  rangeEnd: Buffer;
}

export interface Role {
  name: string;
  /** Sorted by key, as etcd keeps them. */
  perms: Permission[];
}

/** Who a request runs as: the user and the auth revision their credentials were checked at. */
export interface AuthInfo {
  username: string;
  revision: number;
}

/** A request the member makes itself (lease expiry, its own bookkeeping): never checked. */
export const INTERNAL = 'internal' as const;
/** Who asks: a client (possibly with no user, when auth is off or none was given) or the member itself. */
export type Caller = AuthInfo | typeof INTERNAL;

export class AuthStore {
  private enabledFlag = false;
  private rev = 0;
  private readonly users = new Map<string, User>();
  private readonly roles = new Map<string, Role>();
  /** Called when a user's credentials stop being valid (deleted, password changed). */
  onUserInvalidated: (name: string) => void = () => undefined;
  /** Called when auth is disabled (every token goes). */
  onDisabled: () => void = () => undefined;

  private constructor(private readonly backend: Backend) {}

  static async open(backend: Backend): Promise<AuthStore> {
    const s = new AuthStore(backend);
    await s.load();
    return s;
  }

  /** Reads the auth state back from LevelDB (start-up, snapshot install). */
  async load(): Promise<void> {
    this.users.clear();
    this.roles.clear();
    const state = await this.backend.get(STATE_KEY);
    const parsed = state ? (JSON.parse(state.toString('utf8')) as { enabled: boolean; revision: number }) : { enabled: false, revision: 0 };
    this.enabledFlag = parsed.enabled;
    this.rev = parsed.revision;
    await this.backend.scan(USER_PREFIX, Buffer.from('uv', 'latin1'), (chunk) => {
      for (const [, v] of chunk) {
        const u = authpb.User.decode(v);
        const name = bytes(u.name).toString('utf8');
        this.users.set(name, { name, passwordHash: bytes(u.password).toString('utf8'), roles: [...(u.roles ?? [])].sort(), noPassword: u.options?.noPassword === true });
      }
    });
    await this.backend.scan(ROLE_PREFIX, Buffer.from('us', 'latin1'), (chunk) => {
      for (const [, v] of chunk) {
        const r = authpb.Role.decode(v);
        const name = bytes(r.name).toString('utf8');
        this.roles.set(name, {
          name,
          perms: (r.keyPermission ?? []).map((p) => ({ permType: p.permType ?? PermType.READ, key: bytes(p.key), rangeEnd: bytes(p.rangeEnd) })),
        });
      }
    });
  }

  get enabled(): boolean {
    return this.enabledFlag;
  }

  /** Goes up with every change to users, roles or the switch. */
  get revision(): number {
    return this.rev;
  }

  user(name: string): User | undefined {
    return this.users.get(name);
  }

  // ---- changes (applied from the log) ------------------------------------------------

  enable(): void {
    if (this.enabledFlag) return;
    const root = this.users.get(ROOT_USER);
    if (root === undefined) throw AuthErrors.rootUserNotExist();
    if (!root.roles.includes(ROOT_ROLE)) throw AuthErrors.rootRoleNotExist();
    this.enabledFlag = true;
    this.bump();
  }

  disable(): void {
    if (!this.enabledFlag) return;
    this.enabledFlag = false;
    this.bump();
    this.onDisabled();
  }

  userAdd(name: string, passwordHash: string, noPassword: boolean): void {
    if (name === '') throw AuthErrors.userEmpty();
    if (this.users.has(name)) throw AuthErrors.userAlreadyExist();
    this.putUser({ name, passwordHash: noPassword ? '' : passwordHash, roles: [], noPassword });
    this.bump();
  }

  userDelete(name: string): void {
    if (this.enabledFlag && name === ROOT_USER) throw AuthErrors.invalidAuthMgmt();
    if (!this.users.has(name)) throw AuthErrors.userNotFound();
    this.users.delete(name);
    this.backend.del(userKey(name));
    this.bump();
    this.onUserInvalidated(name);
  }

  userChangePassword(name: string, passwordHash: string): void {
    const u = this.users.get(name);
    if (u === undefined) throw AuthErrors.userNotFound();
    this.putUser({ ...u, passwordHash: u.noPassword ? '' : passwordHash });
    this.bump();
    this.onUserInvalidated(name);
  }

  userGrantRole(name: string, role: string): void {
    const u = this.users.get(name);
    if (u === undefined) throw AuthErrors.userNotFound();
    if (role !== ROOT_ROLE && !this.roles.has(role)) throw AuthErrors.roleNotFound();
    if (u.roles.includes(role)) return; // etcd ignores a grant of a role the user has
    this.putUser({ ...u, roles: [...u.roles, role].sort() });
    this.bump();
  }

  userRevokeRole(name: string, role: string): void {
    if (this.enabledFlag && name === ROOT_USER && role === ROOT_ROLE) throw AuthErrors.invalidAuthMgmt();
    const u = this.users.get(name);
    if (u === undefined) throw AuthErrors.userNotFound();
    if (!u.roles.includes(role)) throw AuthErrors.roleNotGranted();
    this.putUser({ ...u, roles: u.roles.filter((r) => r !== role) });
    this.bump();
  }

  roleAdd(name: string): void {
    if (name === '') throw AuthErrors.roleEmpty();
    if (this.roles.has(name)) throw AuthErrors.roleAlreadyExist();
    this.putRole({ name, perms: [] });
    this.bump();
  }

  roleDelete(name: string): void {
    if (this.enabledFlag && name === ROOT_ROLE) throw AuthErrors.invalidAuthMgmt();
    if (!this.roles.has(name)) throw AuthErrors.roleNotFound();
    this.roles.delete(name);
    this.backend.del(roleKey(name));
    for (const u of this.users.values()) if (u.roles.includes(name)) this.putUser({ ...u, roles: u.roles.filter((r) => r !== name) });
    this.bump();
  }

  roleGrantPermission(name: string, perm: Permission): void {
    const role = this.roles.get(name);
    if (role === undefined) throw AuthErrors.roleNotFound();
    const perms = role.perms.map((p) => ({ ...p }));
    const same = perms.find((p) => p.key.equals(perm.key) && p.rangeEnd.equals(perm.rangeEnd));
    if (same) same.permType = perm.permType;
    else perms.push({ ...perm });
    perms.sort((a, b) => Buffer.compare(a.key, b.key));
    this.putRole({ name, perms });
    this.bump();
  }

  roleRevokePermission(name: string, key: Buffer, rangeEnd: Buffer): void {
    const role = this.roles.get(name);
    if (role === undefined) throw AuthErrors.roleNotFound();
    const kept = role.perms.filter((p) => !(p.key.equals(key) && p.rangeEnd.equals(rangeEnd)));
    if (kept.length === role.perms.length) throw AuthErrors.permissionNotGranted();
    this.putRole({ name, perms: kept });
    this.bump();
  }

  // ---- reads -------------------------------------------------------------------------

  userGet(name: string): string[] {
    const u = this.users.get(name);
    if (u === undefined) throw AuthErrors.userNotFound();
    return u.roles;
  }

  userList(): string[] {
    return [...this.users.keys()].sort();
  }

  roleGet(name: string): Permission[] {
    const r = this.roles.get(name);
    if (r === undefined) throw AuthErrors.roleNotFound();
    return r.perms;
  }

  roleList(): string[] {
    return [...this.roles.keys()].sort();
  }

  hasRole(user: string, role: string): boolean {
    return this.users.get(user)?.roles.includes(role) === true;
  }

  // ---- decisions ---------------------------------------------------------------------

  /** etcd's IsAdminPermitted: with auth on, the caller must hold the root role. */
  checkAdmin(caller: Caller): void {
    if (caller === INTERNAL || !this.enabledFlag) return;
    if (caller.username === '') throw AuthErrors.userEmpty();
    const u = this.users.get(caller.username);
    if (u === undefined) throw AuthErrors.userNotFound();
    if (!u.roles.includes(ROOT_ROLE)) throw AuthErrors.permissionDenied();
  }

  /** With auth on, the caller must be some known user (cairn asks this of every call etcd leaves open). */
  checkAuthenticated(caller: Caller): void {
    if (caller === INTERNAL || !this.enabledFlag) return;
    if (caller.username === '') throw AuthErrors.userEmpty();
    if (caller.revision < this.rev) throw AuthErrors.oldRevision();
    if (!this.users.has(caller.username)) throw AuthErrors.permissionDenied();
  }

  checkRange(caller: Caller, key: Uint8Array, rangeEnd?: Uint8Array | null): void {
    this.checkOp(caller, key, rangeEnd, PermType.READ);
  }

  checkPut(caller: Caller, key: Uint8Array): void {
    this.checkOp(caller, key, undefined, PermType.WRITE);
  }

  checkDeleteRange(caller: Caller, key: Uint8Array, rangeEnd?: Uint8Array | null): void {
    this.checkOp(caller, key, rangeEnd, PermType.WRITE);
  }

  /** etcd's isOpPermitted: root holds everything; others need the range covered by their roles' permissions. */
  private checkOp(caller: Caller, key: Uint8Array, rangeEnd: Uint8Array | null | undefined, want: authpb.Permission.Type): void {
    if (caller === INTERNAL || !this.enabledFlag) return;
    if (caller.revision === 0 || caller.username === '') throw AuthErrors.userEmpty();
    if (caller.revision < this.rev) throw AuthErrors.oldRevision();
    const u = this.users.get(caller.username);
    if (u === undefined) throw AuthErrors.permissionDenied();
    if (u.roles.includes(ROOT_ROLE)) return;
    const granted: Interval[] = [];
    for (const roleName of u.roles) {
      for (const p of this.roles.get(roleName)?.perms ?? []) {
        if (p.permType === want || p.permType === PermType.READWRITE) granted.push(interval(p.key, p.rangeEnd));
      }
    }
    if (!covers(granted, interval(Buffer.from(key), rangeEnd ? Buffer.from(rangeEnd) : EMPTY))) throw AuthErrors.permissionDenied();
  }

  private putUser(u: User): void {
    this.users.set(u.name, u);
    const rec = authpb.User.encode({
      name: Buffer.from(u.name, 'utf8'),
      password: Buffer.from(u.passwordHash, 'utf8'),
      roles: u.roles,
      options: u.noPassword ? { noPassword: true } : undefined,
    }).finish();
    this.backend.put(userKey(u.name), Buffer.from(rec));
  }

  private putRole(r: Role): void {
    this.roles.set(r.name, r);
    const rec = authpb.Role.encode({ name: Buffer.from(r.name, 'utf8'), keyPermission: r.perms }).finish();
    this.backend.put(roleKey(r.name), Buffer.from(rec));
  }

  private bump(): void {
    this.rev++;
    this.backend.put(STATE_KEY, Buffer.from(JSON.stringify({ enabled: this.enabledFlag, revision: this.rev }), 'utf8'));
  }
}

const EMPTY = Buffer.alloc(0);

function bytes(b: Uint8Array | null | undefined): Buffer {
  return b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : EMPTY;
}

function userKey(name: string): Buffer {
  return Buffer.concat([USER_PREFIX, Buffer.from(name, 'utf8')]);
}

function roleKey(name: string): Buffer {
  return Buffer.concat([ROLE_PREFIX, Buffer.from(name, 'utf8')]);
}

/** [start, end) over byte strings; end undefined means no upper bound. */
interface Interval {
  start: Buffer;
  end: Buffer | undefined;
}

/** etcd's key range forms: no range end is the one key, "\0" is everything from the key on. */
function interval(key: Buffer, rangeEnd: Buffer): Interval {
  if (rangeEnd.length === 0) return { start: key, end: Buffer.concat([key, ZERO]) };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { start: key, end: undefined };
  return { start: key, end: rangeEnd };
}

const ZERO = Buffer.of(0);

/** True when the union of `granted` covers all of `want` (etcd checks against merged intervals). */
export function covers(granted: Interval[], want: Interval): boolean {
  if (want.end !== undefined && Buffer.compare(want.start, want.end) >= 0) return true; // an empty range asks for nothing
  const sorted = [...granted].sort((a, b) => Buffer.compare(a.start, b.start));
  let cursor = want.start;
  for (const iv of sorted) {
    if (Buffer.compare(iv.start, cursor) > 0) break; // a gap before this interval
    if (iv.end === undefined) return true;
    if (Buffer.compare(iv.end, cursor) > 0) cursor = iv.end;
    if (want.end !== undefined && Buffer.compare(cursor, want.end) >= 0) return true;
  }
  return false;
}

export { AUTH_PREFIX };
