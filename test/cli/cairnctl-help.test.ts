/**
 * Help and usage: `cairnctl <command> --help`, a parent command without a subcommand, and
 * a wrong flag print etcdctl 3.4's text byte for byte (NAME / USAGE / DESCRIPTION /
 * COMMANDS / OPTIONS / GLOBAL OPTIONS laid out by Go's tabwriter). No server is needed.
 */
import { describe, it } from 'vitest';
import { expectSame, runSteps, type GStep } from './golden-lib';

const COMMANDS = [
  'alarm', 'alarm list', 'auth', 'auth enable', 'compaction', 'defrag', 'del', 'elect', 'endpoint', 'endpoint status', 'endpoint health',
  'get', 'lease', 'lease keep-alive', 'lock', 'member', 'member add', 'member list', 'member promote', 'move-leader', 'put', 'role',
  'role grant-permission', 'snapshot', 'snapshot save', 'snapshot status', 'snapshot restore', 'check', 'check perf', 'check datascale', 'make-mirror', 'user get', 'role revoke-permission', 'auth disable', 'txn', 'user', 'user add', 'user passwd', 'version', 'watch',
];

const STEPS: GStep[] = [
  ...COMMANDS.map((c) => ({ args: [...c.split(' '), '--help'] })),
  { args: ['member'] },
  { args: ['member', 'bogus'] },
  { args: ['lease', '-h'] },
  { args: ['get', '--bogus'] },
  { args: ['lock', 'l', 'sh', '-c', 'true'] },
  { args: ['member', 'add', '--peer-urls'] },
  { args: ['put', '-w'] },
  { args: ['gett'] },
  { args: ['help', 'get'] },
  { args: ['help', 'member', 'add'] },
  { args: ['help', '--help'] },
  { args: ['help', 'lease', 'bogus'] },
];

describe('cairnctl help against etcdctl', () => {
  it('prints etcdctl 3.4 help and usage texts', async () => {
    const g = ['--endpoints', '127.0.0.1:1', '--dial-timeout', '100ms'];
    expectSame(await runSteps('etcdctl', g, STEPS, []), await runSteps('cairnctl', g, STEPS, []), 'help');
  }, 120_000);
});
