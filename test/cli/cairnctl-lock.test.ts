/**
 * lock and elect: etcdctl and cairnctl run the same scenario, each against its own fresh
 * cairn server (so revisions match), with holders and waiters in the background, and
 * print the same once lease IDs are normalised.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { ETCDCTL_BIN, cleanupAll, startCairn } from '../../bench/lib/procs';
import { CAIRNCTL, expectSame, runSteps, type GStep, type Tool } from './golden-lib';

afterAll(async () => {
  await cleanupAll();
});

const STEPS: GStep[] = [
  { args: ['lock'] },
  { args: ['lock', 'l1', '--', 'sh', '-c', 'echo key=$ETCD_LOCK_KEY rev=$ETCD_LOCK_REV; env | grep ^ETCD_ | sort'] },
  { args: ['lock', 'l1', 'echo', 'hello'] },
  { args: ['-w', 'json', 'lock', 'l1', '--', 'echo', 'json'] },
  { args: ['lock', '--ttl', '5', 'l1', '--', 'sh', '-c', 'exit 3'] },
  { args: ['lock', 'l1', '--', 'sh', '-c', 'kill -9 $$'] },
  { args: ['lock', 'l1', '/nonexistent/program'] },
  { args: ['lock', 'l1', 'no-such-program-anywhere'] },
  { args: ['lock', 'l1', 'sh', '-c', 'true'], note: '-c is a flag for etcdctl' },
  { args: ['get', '--prefix', 'l1'], note: 'every lock released' },
  { args: ['elect'] },
  { args: ['elect', 'e1'] },
  { args: ['elect', '-l', 'e1', 'p'] },
  { args: ['elect', 'a', 'b', 'c'] },
];

/** A background etcdctl / cairnctl. */
class Bg {
  readonly child: ChildProcess;
  out = '';
  constructor(tool: Tool, args: string[]) {
    const env = { ...process.env, ETCDCTL_API: '3' };
    this.child = tool === 'etcdctl' ? spawn(ETCDCTL_BIN, args, { env }) : spawn(process.execPath, [CAIRNCTL, ...args], { env });
    this.child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
  }
  async waitFor(re: RegExp, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!re.test(this.out)) {
      if (Date.now() > deadline) throw new Error(`no ${re} in ${JSON.stringify(this.out)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  exit(): Promise<number | null> {
    return new Promise((r) => (this.child.exitCode !== null ? r(this.child.exitCode) : this.child.once('exit', (c) => r(c))));
  }
}

// etcdctl's client library sometimes logs a retry of the call a signal cancelled (a race
// inside etcdctl: 'retrying of unary invoker failed ... context canceled'): not its output.
const CLIENT_RETRY_LOG = /^\{"level":"warn"[^\n]*"caller":"clientv3\/retry_interceptor\.go:\d+"[^\n]*\n/gm;
const said = (b: Bg): string => JSON.stringify(b.out.replace(CLIENT_RETRY_LOG, ''));

/** Holders and waiters: returns a transcript of what each background process printed. */
async function background(tool: Tool, ep: string): Promise<string> {
  const g = ['--endpoints', ep];
  const log: string[] = [];
  const holder = new Bg(tool, [...g, 'lock', 'bl']);
  await holder.waitFor(/^bl\//m);
  const waiter = new Bg(tool, [...g, 'lock', 'bl', '--', 'sh', '-c', 'echo got $ETCD_LOCK_KEY']);
  await new Promise((r) => setTimeout(r, 1000));
  log.push(`waiter before release: ${said(waiter)}`);
  holder.child.kill('SIGINT');
  log.push(`holder exit ${await holder.exit()}: ${said(holder)}`);
  log.push(`waiter exit ${await waiter.exit()}: ${said(waiter)}`);

  const observer = new Bg(tool, [...g, 'elect', '-l', 'el']);
  await new Promise((r) => setTimeout(r, 1000));
  const first = new Bg(tool, [...g, 'elect', 'el', 'one']);
  await first.waitFor(/^one$/m);
  const second = new Bg(tool, [...g, 'elect', 'el', 'two']);
  await observer.waitFor(/^one$/m);
  await new Promise((r) => setTimeout(r, 500));
  log.push(`second before the first resigns: ${said(second)}`);
  first.child.kill('SIGTERM');
  log.push(`first exit ${await first.exit()}: ${said(first)}`);
  await second.waitFor(/^two$/m);
  await observer.waitFor(/^two$/m);
  second.child.kill('SIGINT');
  log.push(`second exit ${await second.exit()}: ${said(second)}`);
  observer.child.kill('SIGINT');
  log.push(`observer exit ${await observer.exit()}: ${said(observer)}`);
  return log.join('\n').replace(/(bl|el)\/[0-9a-f]{6,}/g, '$1/<LEASE>');
}

describe('cairnctl lock / elect against etcdctl', () => {
  it('prints what etcdctl prints, each on a fresh cairn', async () => {
    const [a, b] = await Promise.all([startCairn(), startCairn()]);
    const fix = (s: GStep): GStep => ({ ...s, project: (r) => `${r.code}\n${r.stdout.replace(/l1\/[0-9a-f]+/g, 'l1/<LEASE>')}\n${r.stderr}` });
    const steps = STEPS.map(fix);
    expectSame(await runSteps('etcdctl', ['--endpoints', a.endpoint], steps, [a.endpoint]), await runSteps('cairnctl', ['--endpoints', b.endpoint], steps, [b.endpoint]), 'lock');
    const [x, y] = await Promise.all([background('etcdctl', a.endpoint), background('cairnctl', b.endpoint)]);
    expect(y).toBe(x);
    expect(x).toContain('got bl/<LEASE>');
  }, 120_000);
});
