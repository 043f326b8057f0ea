/**
 * user / role / auth commands and --user / --password: etcdctl and cairnctl run the same
 * steps, each against its own fresh server of the same kind, and must print the same.
 * Both servers by default: a real etcd 3.4 and cairn (CAIRNCTL_AUTH_TARGETS=etcd or =cairn
 * runs one).
 */
import { afterAll, describe, it } from 'vitest';
import { cleanupAll, startCairn, startEtcd, type ServerProc } from '../../bench/lib/procs';
import { expectSame, runSteps, type GStep } from './golden-lib';

const TARGETS = (process.env.CAIRNCTL_AUTH_TARGETS ?? 'etcd,cairn').split(',').filter((t): t is 'etcd' | 'cairn' => t === 'etcd' || t === 'cairn');

afterAll(async () => {
  await cleanupAll();
});

const ROOT = ['--user', 'root:pw'];

export const AUTH_STEPS: GStep[] = [
  { args: ['user', 'add'] },
  { args: ['user', 'add', 'root:pw'] },
  { args: ['user', 'add', 'u1', '--new-user-password=p1'] },
  { args: ['user', 'add', 'u2', '--interactive=false'], input: 'p2 ignored\n' },
  { args: ['user', 'add', ':x'] },
  { args: ['user', 'add', 'u1:p'], note: 'exists' },
  { args: ['-w', 'json', 'user', 'add', 'u3:p'] },
  { args: ['-w', 'fields', 'user', 'add', 'u4:p'] },
  { args: ['-w', 'table', 'user', 'add', 'u5:p'], note: 'added, then the printer refuses' },
  { args: ['user', 'add', 'u6', '--no-password'] },
  { args: ['user', 'list'] },
  { args: ['-w', 'json', 'user', 'list'] },
  { args: ['-w', 'fields', 'user', 'list'] },
  { args: ['user', 'list', 'x'] },
  { args: ['user', 'get', 'u1'] },
  { args: ['-w', 'json', 'user', 'get', 'u1'] },
  { args: ['-w', 'fields', 'user', 'get', 'u1'] },
  { args: ['user', 'get', 'nobody'] },
  { args: ['user', 'get'] },
  { args: ['role', 'add', 'r1'] },
  { args: ['-w', 'json', 'role', 'add', 'r2'] },
  { args: ['-w', 'fields', 'role', 'add', 'r3'] },
  { args: ['role', 'add'] },
  { args: ['role', 'add', 'r1'], note: 'exists' },
  { args: ['role', 'grant-permission', 'r1', 'read', 'k1'] },
  { args: ['role', 'grant-permission', 'r1', 'write', 'p/', '--prefix'] },
  { args: ['role', 'grant-permission', 'r1', 'readwrite', 'a', 'z'] },
  { args: ['role', 'grant-permission', 'r1', 'READWRITE', 'f', '--from-key'] },
  { args: ['role', 'grant-permission', 'r1', 'readwrite', '', '--prefix'] },
  { args: ['role', 'grant-permission', 'r1', 'bad', 'k'] },
  { args: ['role', 'grant-permission', 'r1', 'read'] },
  { args: ['role', 'grant-permission', 'r1', 'read', 'a', 'b', '--prefix'] },
  { args: ['role', 'grant-permission', 'r1', 'read', 'a', 'b', '--from-key'] },
  { args: ['role', 'grant-permission', 'r1', 'read', 'a', '--prefix', '--from-key'] },
  { args: ['role', 'grant-permission', 'nor', 'read', 'a'] },
  { args: ['-w', 'json', 'role', 'grant-permission', 'r2', 'read', 'x'] },
  { args: ['-w', 'fields', 'role', 'grant-permission', 'r3', 'read', 'x'] },
  { args: ['role', 'get', 'r1'] },
  { args: ['-w', 'json', 'role', 'get', 'r1'] },
  { args: ['-w', 'fields', 'role', 'get', 'r1'] },
  { args: ['-w', 'table', 'role', 'get', 'r1'] },
  { args: ['role', 'get', 'nor'] },
  { args: ['role', 'get'] },
  { args: ['role', 'list'] },
  { args: ['-w', 'json', 'role', 'list'] },
  { args: ['-w', 'fields', 'role', 'list'] },
  { args: ['role', 'list', 'x'] },
  { args: ['user', 'grant-role', 'u1', 'r1'] },
  { args: ['-w', 'json', 'user', 'grant-role', 'u1', 'r2'] },
  { args: ['-w', 'fields', 'user', 'grant-role', 'u1', 'r3'] },
  { args: ['user', 'grant-role', 'u1'] },
  { args: ['user', 'grant-role', 'u1', 'nor'] },
  { args: ['user', 'get', 'u1'] },
  { args: ['-w', 'json', 'user', 'get', 'u1'] },
  { args: ['user', 'get', 'u1', '--detail'] },
  { args: ['-w', 'json', 'user', 'get', 'u1', '--detail'] },
  { args: ['role', 'revoke-permission', 'r1', 'k1'] },
  { args: ['role', 'revoke-permission', 'r1', 'p/', '--prefix'] },
  { args: ['role', 'revoke-permission', 'r1', 'a', 'z'] },
  { args: ['role', 'revoke-permission', 'r1', 'f', '--from-key'] },
  { args: ['role', 'revoke-permission', 'r1', '', '--prefix'] },
  { args: ['role', 'revoke-permission', 'r1', 'nokey'] },
  { args: ['-w', 'json', 'role', 'revoke-permission', 'r2', 'x'] },
  { args: ['-w', 'fields', 'role', 'revoke-permission', 'r3', 'x'] },
  { args: ['role', 'revoke-permission', 'r1'] },
  { args: ['user', 'revoke-role', 'u1', 'r3'] },
  { args: ['-w', 'json', 'user', 'revoke-role', 'u1', 'r2'] },
  { args: ['-w', 'fields', 'user', 'revoke-role', 'u1', 'r1'] },
  { args: ['user', 'revoke-role', 'u1', 'r1'] },
  { args: ['user', 'revoke-role', 'u1'] },
  { args: ['user', 'passwd', 'u2', '--interactive=false'], input: 'new\n' },
  { args: ['-w', 'json', 'user', 'passwd', 'u2', '--interactive=false'], input: 'new2\n' },
  { args: ['user', 'passwd'] },
  { args: ['user', 'passwd', 'nobody', '--interactive=false'], input: 'x\n' },
  { args: ['user', 'delete', 'u5'] },
  { args: ['-w', 'json', 'user', 'delete', 'u4'] },
  { args: ['-w', 'fields', 'user', 'delete', 'u3'] },
  { args: ['user', 'delete', 'u3'] },
  { args: ['user', 'delete'] },
  { args: ['role', 'delete', 'r3'] },
  { args: ['-w', 'json', 'role', 'delete', 'r2'] },
  { args: ['role', 'delete', 'r2'] },
  { args: ['role', 'delete'] },
  { args: ['--user', 'root:pw', 'put', 'k', 'before'], note: 'auth off' },
  { args: ['auth', 'enable', 'x'] },
  { args: ['auth', 'disable', 'x'] },
  { args: ['auth', 'enable'], note: 'root lacks the root role: etcdctl adds and grants it' },
  { args: ['get', 'k'], note: 'auth on, no user' },
  { args: [...ROOT, 'put', 'k', 'v'] },
  { args: [...ROOT, 'get', 'k'] },
  { args: ['--user', 'root:bad', 'get', 'k'] },
  { args: ['--user', 'root', '--password', 'pw', 'get', 'k'] },
  { args: ['--user', 'root:pw', '--password', 'pw', 'get', 'k'] },
  { args: ['--user', 'nobody:x', 'get', 'k'] },
  { args: ['--user', 'u2:new2', 'get', 'k'], note: 'no role: permission denied' },
  { args: [...ROOT, 'user', 'grant-role', 'u2', 'r1'] },
  { args: [...ROOT, 'role', 'grant-permission', 'r1', 'read', 'k'] },
  { args: ['--user', 'u2:new2', 'get', 'k'] },
  { args: ['--user', 'u2:new2', 'put', 'k', 'x'], note: 'read only' },
  { args: ['--user', 'u2:new2', 'user', 'list'] },
  { args: [...ROOT, 'role', 'get', 'root'] },
  { args: [...ROOT, '-w', 'json', 'role', 'get', 'root'] },
  { args: [...ROOT, 'user', 'list'] },
  { args: [...ROOT, 'lease', 'grant', '60'], project: (r) => `${r.code} ${/granted with TTL\(60s\)/.test(r.stdout)}` },
  { args: [...ROOT, '-w', 'fields', 'auth', 'disable'] },
  { args: ['get', 'k'], note: 'auth off again' },
  { args: ['auth', 'disable'] },
  { args: ['-w', 'table', 'auth', 'enable'] },
  { args: [...ROOT, 'auth', 'disable'] },
  { args: [...ROOT, 'get', 'k'], note: 'credentials for a server with auth off: a warning, then the answer' },
];

async function start(kind: 'etcd' | 'cairn'): Promise<ServerProc> {
  return kind === 'etcd' ? startEtcd() : startCairn();
}

describe('cairnctl user / role / auth against etcdctl', () => {
  for (const target of TARGETS) {
    it(`prints what etcdctl prints, against ${target}`, async () => {
      const [a, b] = await Promise.all([start(target), start(target)]);
      const expected = await runSteps('etcdctl', ['--endpoints', a.endpoint], AUTH_STEPS, [a.endpoint]);
      const actual = await runSteps('cairnctl', ['--endpoints', b.endpoint], AUTH_STEPS, [b.endpoint]);
      expectSame(expected, actual, `auth-${target}`);
    }, 240_000);
  }
});
