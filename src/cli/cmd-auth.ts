/**
 * user / role / auth commands as etcdctl 3.4 runs and prints them
 * (etcdctl/ctlv3/command/{user,role,auth}_command.go and the printers).
 */
import { EtcdError, type Permission, type PermissionType, type ResponseHeader } from '../client';
import { prefixEnd } from '../client/convert';
import { b, call, s, type Command, type Ctx } from './cmd';
import { goQuote, jobj, jstr, obytes, onum } from './gofmt';
import { jHeader, unsupported, type Display } from './printers';
import { Exit, errorText, exitWithError, out, retryWarning } from './runtime';
import { askPassword } from './stdin';

// ---------------------------------------------------------------------------------
// Printing

/** The response header alone, for json and fields; `simple` is the command's own line. */
function printHeaderOr(d: Display, h: ResponseHeader, simple: string, fields = true): void {
  if (d.format === 'json') return out(jobj([['header', jHeader(h)]]) + '\n');
  if (d.format === 'fields' && fields) return out(fieldsHeader(h));
  if (d.format !== 'simple') unsupported(d);
  out(simple);
}

function fieldsHeader(h: ResponseHeader): string {
  return `"ClusterID" : ${h.clusterId}\n"MemberID" : ${h.memberId}\n"Revision" : ${h.revision}\n"RaftTerm" : ${h.raftTerm}\n`;
}

const PERM_ENUM: Record<PermissionType, [number, string]> = { read: [0, 'READ'], write: [1, 'WRITE'], readwrite: [2, 'READWRITE'] };

function printRoleGet(d: Display, role: string, r: { header: ResponseHeader; permissions: Permission[] }): void {
  if (d.format === 'json') {
    const perms = r.permissions.map((p) => jobj([onum('permType', PERM_ENUM[p.type][0]), obytes('key', p.key), obytes('range_end', p.rangeEnd)]));
    return out(jobj([['header', jHeader(r.header)], perms.length > 0 ? ['perm', '[' + perms.join(',') + ']'] : null]) + '\n');
  }
  if (d.format === 'fields') {
    out(fieldsHeader(r.header));
    for (const p of r.permissions) out(`"PermType" :  ${PERM_ENUM[p.type][1]}\n"Key" : ${goQuote(p.key)}\n"RangeEnd" : ${goQuote(p.rangeEnd)}\n`);
    return;
  }
  if (d.format !== 'simple') unsupported(d);
  const line = (p: Permission): Buffer => {
    if (p.rangeEnd.length === 0) return Buffer.concat([Buffer.from('\t'), p.key, Buffer.from('\n')]);
    const open = p.rangeEnd.length === 1 && p.rangeEnd[0] === 0;
    const parts = [Buffer.from('\t['), p.key, Buffer.from(', '), open ? Buffer.from('<open ended>') : Buffer.concat([p.rangeEnd, Buffer.from(')')])];
    if (p.key.length > 0 && prefixEnd(p.key).equals(p.rangeEnd)) parts.push(Buffer.from(' (prefix '), p.key, Buffer.from(')'));
    return Buffer.concat([...parts, Buffer.from('\n')]);
  };
  out(`Role ${role}\nKV Read:\n`);
  for (const p of r.permissions) if (p.type !== 'write') out(line(p));
  out('KV Write:\n');
  for (const p of r.permissions) if (p.type !== 'read') out(line(p));
}

function printNames(d: Display, h: ResponseHeader, field: 'users' | 'roles', names: string[]): void {
  if (d.format === 'json') return out(jobj([['header', jHeader(h)], names.length > 0 ? [field, '[' + names.map(jstr).join(',') + ']'] : null]) + '\n');
  if (d.format === 'fields' && field === 'roles') return out(fieldsHeader(h) + `"Roles" :${names.map((n) => ' ' + goQuote(n)).join('')}\n`);
  if (d.format !== 'simple') unsupported(d);
  for (const n of names) out(`${n}\n`);
}

// ---------------------------------------------------------------------------------
// Passwords

/** etcdctl's readPasswordInteractive: asked twice, must match and not be empty. */
async function readPasswordInteractive(ctx: Ctx, name: string): Promise<string> {
  const p1 = await askPassword(ctx.stdin, `Password of ${name}: `);
  if (p1.length === 0) exitWithError(Exit.BadArgs, 'empty password');
  const p2 = await askPassword(ctx.stdin, `Type password of ${name} again for confirmation: `);
  if (p1 !== p2) exitWithError(Exit.BadArgs, 'given passwords are different');
  return p1;
}

/** fmt.Scanf("%s"): the first whitespace-delimited word of stdin. */
async function scanWord(ctx: Ctx): Promise<string> {
  const line = (await ctx.stdin.readLine()) ?? '';
  return line.trim().split(/\s+/)[0] ?? '';
}

// ---------------------------------------------------------------------------------
// Permissions' ranges (role grant-permission / revoke-permission)

function permRange(key: string, endArg: string | undefined, prefix: boolean, fromKey: boolean): { key: string; rangeEnd: string } {
  if (key.length === 0) {
    if (prefix && fromKey) exitWithError(Exit.BadArgs, '--from-key and --prefix flags are mutually exclusive');
    // An empty key with --prefix / --from-key is the whole key space, ["\0", "\0").
    return { key: '\x00', rangeEnd: prefix || fromKey ? '\x00' : '' };
  }
  if (endArg === undefined) {
    if (prefix) {
      if (fromKey) exitWithError(Exit.BadArgs, '--from-key and --prefix flags are mutually exclusive');
      return { key, rangeEnd: prefixEnd(Buffer.from(key, 'utf8')).toString('latin1') };
    }
    return { key, rangeEnd: fromKey ? '\x00' : '' };
  }
  if (prefix) exitWithError(Exit.BadArgs, 'unexpected endkey argument with --prefix flag');
  if (fromKey) exitWithError(Exit.BadArgs, 'unexpected endkey argument with --from-key flag');
  return { key, rangeEnd: endArg };
}

/** The range end as bytes (prefixEnd's result is binary: latin1 keeps it byte for byte). */
function endBytes(rangeEnd: string, fromPrefix: boolean): Buffer {
  return fromPrefix ? Buffer.from(rangeEnd, 'latin1') : Buffer.from(rangeEnd, 'utf8');
}

const PERM_FLAGS = (verb: 'grant' | 'revoke') => [
  b('from-key', `${verb} a permission of keys that are greater than or equal to the given key using byte compare`),
  b('prefix', `${verb} a prefix permission`),
];

// ---------------------------------------------------------------------------------
// Commands

const opt = (ctx: Ctx) => ({ timeoutMs: ctx.commandTimeoutMs });

export const USER_COMMAND: Command = {
  name: 'user',
  short: 'User related commands',
  usage: 'user <subcommand>',
  flags: [],
  sub: [
    {
      name: 'add',
      short: 'Adds a new user',
      usage: 'user add <user name or user:password> [options]',
      flags: [
        { name: 'interactive', kind: 'bool', default: 'true', usage: 'Read password from stdin instead of interactive terminal' },
        s('new-user-password', '', 'Supply password from the command line flag'),
        b('no-password', 'Create a user without password (CN based auth only)'),
      ],
      run: async (ctx, args, f) => {
        if (args.length !== 1) exitWithError(Exit.BadArgs, 'user add command requires user name as its argument');
        let user = args[0];
        let password = '';
        const noPassword = f.bool('no-password');
        if (!noPassword) {
          if (f.str('new-user-password') !== '') password = f.str('new-user-password');
          else {
            const i = args[0].indexOf(':');
            if (i < 0) password = f.bool('interactive') ? await readPasswordInteractive(ctx, args[0]) : await scanWord(ctx);
            else {
              user = args[0].slice(0, i);
              password = args[0].slice(i + 1);
              if (user.length === 0) exitWithError(Exit.BadArgs, 'empty user name is not allowed');
            }
          }
        }
        const c = ctx.client();
        const r = await call(ctx, () => c.auth.userAdd(user, password, { ...opt(ctx), noPassword }));
        printHeaderOr(ctx.display, r.header, `User ${user} created\n`);
      },
    },
    {
      name: 'delete',
      short: 'Deletes a user',
      usage: 'user delete <user name>',
      flags: [],
      run: async (ctx, args) => {
        if (args.length !== 1) exitWithError(Exit.BadArgs, 'user delete command requires user name as its argument');
        const c = ctx.client();
        const r = await call(ctx, () => c.auth.userDelete(args[0], opt(ctx)));
        printHeaderOr(ctx.display, r.header, `User ${args[0]} deleted\n`);
      },
    },
    {
      name: 'get',
      short: 'Gets detailed information of a user',
      usage: 'user get <user name> [options]',
      flags: [b('detail', 'Show permissions of roles granted to the user')],
      run: async (ctx, args, f) => {
        if (args.length !== 1) exitWithError(Exit.BadArgs, 'user get command requires user name as its argument');
        const name = args[0];
        const c = ctx.client();
        const r = await call(ctx, () => c.auth.userGet(name, opt(ctx)));
        if (f.bool('detail')) {
          out(`User: ${name}\n`);
          for (const role of r.roles) {
            out('\n');
            printRoleGet(ctx.display, role, await call(ctx, () => c.auth.roleGet(role, opt(ctx))));
          }
          return;
        }
        if (ctx.display.format === 'json') return out(jobj([['header', jHeader(r.header)], r.roles.length > 0 ? ['roles', '[' + r.roles.map(jstr).join(',') + ']'] : null]) + '\n');
        if (ctx.display.format !== 'simple') unsupported(ctx.display);
        out(`User: ${name}\nRoles:${r.roles.map((x) => ' ' + x).join('')}\n`);
      },
    },
    {
      name: 'grant-role',
      short: 'Grants a role to a user',
      usage: 'user grant-role <user name> <role name>',
      flags: [],
      run: async (ctx, args) => {
        if (args.length !== 2) exitWithError(Exit.BadArgs, 'user grant command requires user name and role name as its argument');
        const c = ctx.client();
        const r = await call(ctx, () => c.auth.userGrantRole(args[0], args[1], opt(ctx)));
        printHeaderOr(ctx.display, r.header, `Role ${args[1]} is granted to user ${args[0]}\n`);
      },
    },
    {
      name: 'list',
      short: 'Lists all users',
      usage: 'user list',
      flags: [],
      run: async (ctx, args) => {
        if (args.length !== 0) exitWithError(Exit.BadArgs, 'user list command requires no arguments');
        const c = ctx.client();
        const r = await call(ctx, () => c.auth.userList(opt(ctx)));
        printNames(ctx.display, r.header, 'users', r.users);
      },
    },
    {
      name: 'passwd',
      short: 'Changes password of user',
      usage: 'user passwd <user name> [options]',
      flags: [{ name: 'interactive', kind: 'bool', default: 'true', usage: 'If true, read password from stdin instead of interactive terminal' }],
      run: async (ctx, args, f) => {
        if (args.length !== 1) exitWithError(Exit.BadArgs, 'user passwd command requires user name as its argument');
        const password = f.bool('interactive') ? await readPasswordInteractive(ctx, args[0]) : await scanWord(ctx);
        const c = ctx.client();
        const r = await call(ctx, () => c.auth.userChangePassword(args[0], password, opt(ctx)));
        printHeaderOr(ctx.display, r.header, 'Password updated\n');
      },
    },
    {
      name: 'revoke-role',
      short: 'Revokes a role from a user',
      usage: 'user revoke-role <user name> <role name>',
      flags: [],
      run: async (ctx, args) => {
        if (args.length !== 2) exitWithError(Exit.BadArgs, 'user revoke-role requires user name and role name as its argument');
        const c = ctx.client();
        const r = await call(ctx, () => c.auth.userRevokeRole(args[0], args[1], opt(ctx)));
        printHeaderOr(ctx.display, r.header, `Role ${args[1]} is revoked from user ${args[0]}\n`);
      },
    },
  ],
};

export const ROLE_COMMAND: Command = {
  name: 'role',
  short: 'Role related commands',
  usage: 'role <subcommand>',
  flags: [],
  sub: [
    {
      name: 'add',
      short: 'Adds a new role',
      usage: 'role add <role name>',
      flags: [],
      run: async (ctx, args) => {
        if (args.length !== 1) exitWithError(Exit.BadArgs, 'role add command requires role name as its argument');
        const c = ctx.client();
        const r = await call(ctx, () => c.auth.roleAdd(args[0], opt(ctx)));
        printHeaderOr(ctx.display, r.header, `Role ${args[0]} created\n`);
      },
    },
    {
      name: 'delete',
      short: 'Deletes a role',
      usage: 'role delete <role name>',
      flags: [],
      run: async (ctx, args) => {
        if (args.length !== 1) exitWithError(Exit.BadArgs, 'role delete command requires role name as its argument');
        const c = ctx.client();
        const r = await call(ctx, () => c.auth.roleDelete(args[0], opt(ctx)));
        printHeaderOr(ctx.display, r.header, `Role ${args[0]} deleted\n`);
      },
    },
    {
      name: 'get',
      short: 'Gets detailed information of a role',
      usage: 'role get <role name>',
      flags: [],
      run: async (ctx, args) => {
        if (args.length !== 1) exitWithError(Exit.BadArgs, 'role get command requires role name as its argument');
        const c = ctx.client();
        printRoleGet(ctx.display, args[0], await call(ctx, () => c.auth.roleGet(args[0], opt(ctx))));
      },
    },
    {
      name: 'grant-permission',
      short: 'Grants a key to a role',
      usage: 'role grant-permission [options] <role name> <permission type> <key> [endkey]',
      flags: PERM_FLAGS('grant'),
      run: async (ctx, args, f) => {
        if (args.length < 3) exitWithError(Exit.BadArgs, 'role grant command requires role name, permission type, and key [endkey] as its argument');
        const types: Record<string, PermissionType> = { READ: 'read', WRITE: 'write', READWRITE: 'readwrite' };
        const type = types[args[1].toUpperCase()];
        if (type === undefined) exitWithError(Exit.BadArgs, `invalid permission type: ${args[1]}`);
        const pr = permRange(args[2], args[3], f.bool('prefix'), f.bool('from-key'));
        const fromPrefix = f.bool('prefix') && args[2].length > 0;
        const c = ctx.client();
        const r = await call(ctx, () => c.auth.roleGrantPermission(args[0], type, pr.key, endBytes(pr.rangeEnd, fromPrefix), opt(ctx)));
        printHeaderOr(ctx.display, r.header, `Role ${args[0]} updated\n`);
      },
    },
    {
      name: 'list',
      short: 'Lists all roles',
      usage: 'role list',
      flags: [],
      run: async (ctx, args) => {
        if (args.length !== 0) exitWithError(Exit.BadArgs, 'role list command requires no arguments');
        const c = ctx.client();
        const r = await call(ctx, () => c.auth.roleList(opt(ctx)));
        printNames(ctx.display, r.header, 'roles', r.roles);
      },
    },
    {
      name: 'revoke-permission',
      short: 'Revokes a key from a role',
      usage: 'role revoke-permission <role name> <key> [endkey]',
      flags: PERM_FLAGS('revoke'),
      run: async (ctx, args, f) => {
        if (args.length < 2) exitWithError(Exit.BadArgs, 'role revoke-permission command requires role name and key [endkey] as its argument');
        const pr = permRange(args[1], args[2], f.bool('prefix'), f.bool('from-key'));
        const fromPrefix = f.bool('prefix') && args[1].length > 0;
        const end = endBytes(pr.rangeEnd, fromPrefix);
        const c = ctx.client();
        const r = await call(ctx, () => c.auth.roleRevokePermission(args[0], pr.key, end, opt(ctx)));
        let msg: Buffer;
        if (end.length === 0) msg = Buffer.from(`Permission of key ${args[1]} is revoked from role ${args[0]}\n`);
        else if (end.length === 1 && end[0] === 0) msg = Buffer.from(`Permission of range [${args[1]}, <open ended> is revoked from role ${args[0]}\n`);
        else msg = Buffer.concat([Buffer.from(`Permission of range [${args[1]}, `), end, Buffer.from(`) is revoked from role ${args[0]}\n`)]);
        if (ctx.display.format === 'simple') return out(msg);
        printHeaderOr(ctx.display, r.header, '');
      },
    },
  ],
};

export const AUTH_COMMAND: Command = {
  name: 'auth',
  short: 'Enable or disable authentication',
  usage: 'auth <enable or disable>',
  flags: [],
  sub: [
    {
      name: 'disable',
      short: 'Disables authentication',
      usage: 'auth disable',
      flags: [],
      run: async (ctx, args) => {
        if (args.length !== 0) exitWithError(Exit.BadArgs, 'auth disable command does not accept any arguments');
        const c = ctx.client();
        await call(ctx, () => c.auth.authDisable(opt(ctx)));
        out('Authentication Disabled\n');
      },
    },
    {
      name: 'enable',
      short: 'Enables authentication',
      usage: 'auth enable',
      flags: [],
      run: async (ctx, args) => {
        if (args.length !== 0) exitWithError(Exit.BadArgs, 'auth enable command does not accept any arguments');
        const c = ctx.client();
        // As etcdctl: without a root role, create it, grant it to root and try again.
        for (;;) {
          try {
            await c.auth.authEnable(opt(ctx));
            break;
          } catch (e) {
            retryWarning(ctx.target, e);
            if (!(e instanceof EtcdError && e.details === 'etcdserver: root user does not have root role')) exitWithError(Exit.Error, errorText(e));
          }
          await call(ctx, () => c.auth.roleAdd('root', opt(ctx)));
          await call(ctx, () => c.auth.userGrantRole('root', 'root', opt(ctx)));
        }
        out('Authentication Enabled\n');
      },
    },
  ],
};
