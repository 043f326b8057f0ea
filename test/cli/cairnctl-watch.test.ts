/**
 * watch: argument checks, `-- command` run per event with ETCD_WATCH_*, ETCDCTL_WATCH_KEY,
 * --rev / --prefix / --prev-kv, -w json, and -i (watch requests from stdin): etcdctl and
 * cairnctl each run the scenario against their own fresh cairn (same revisions) and
 * print the same.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { ETCDCTL_BIN, cleanupAll, etcdctl, startCairn } from '../../bench/lib/procs';
import { CAIRNCTL, expectSame, runSteps, type GStep, type Tool } from './golden-lib';

afterAll(async () => {
  await cleanupAll();
});

const ECHO = ['sh', '-c', 'echo "T=$ETCD_WATCH_EVENT_TYPE K=$ETCD_WATCH_KEY V=$ETCD_WATCH_VALUE R=$ETCD_WATCH_REVISION"'];

const STEPS: GStep[] = [
  { args: ['watch'] },
  { args: ['watch', 'a', '--'] },
  { args: ['watch', 'a', 'b', '--prefix'] },
  { args: ['watch', 'a', '--rev', 'x'] },
  { args: ['watch', 'foo'], env: { ETCDCTL_WATCH_KEY: 'wk' } },
  { args: ['watch', 'foo'], env: { ETCDCTL_WATCH_RANGE_END: 'z' } },
  { args: ['watch', '-i'], input: '\nfoo\nput x\nwatch\nwatch a b --prefix\nwatch x --rev=zz\n' },
  { args: ['watch', '-i'], input: 'watch --bogus x\n' },
];

/** Server identities differ between the two servers. */
function ids(t: string): string {
  return t.replace(/"(cluster_id|member_id)":\d+/g, '"$1":<ID>').replace(/"(ClusterID|MemberID)" : \d+/g, '"$1" : <ID>');
}

class Bg {
  readonly child: ChildProcess;
  out = '';
  err = '';
  constructor(tool: Tool, args: string[], env: NodeJS.ProcessEnv = {}) {
    const e = { ...process.env, ETCDCTL_API: '3', ...env };
    this.child = tool === 'etcdctl' ? spawn(ETCDCTL_BIN, args, { env: e }) : spawn(process.execPath, [CAIRNCTL, ...args], { env: e });
    this.child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.err += d.toString()));
  }
  async waitFor(re: RegExp, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!re.test(this.out)) {
      if (Date.now() > deadline) throw new Error(`no ${re} in ${JSON.stringify(this.out)} / ${JSON.stringify(this.err)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  async stop(): Promise<string> {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    return `stdout: ${JSON.stringify(ids(this.out))}\nstderr: ${JSON.stringify(ids(this.err))}`;
  }
  exited(): Promise<number | null> {
    return new Promise((r) => (this.child.exitCode !== null ? r(this.child.exitCode) : this.child.once('exit', (c) => r(c))));
  }
}

const settle = (ms = 1200): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function scenario(tool: Tool, ep: string): Promise<string> {
  const g = ['--endpoints', ep];
  const put = async (k: string, v: string): Promise<void> => void (await etcdctl(ep, ['put', k, v]));
  const log: string[] = [];
  const exec = new Bg(tool, [...g, 'watch', 'w', '--', ...ECHO]);
  const envKey = new Bg(tool, [...g, 'watch', '--prev-kv', '--', ...ECHO], { ETCDCTL_WATCH_KEY: 'w' });
  const json = new Bg(tool, [...g, '-w', 'json', 'watch', '--prefix', 'w']);
  const inter = new Bg(tool, [...g, 'watch', '-i']);
  inter.child.stdin!.write('watch ia\nwatch p --prefix --prev-kv\nwatch w -- sh -c "echo i:$ETCD_WATCH_KEY"\n');
  await settle();
  await put('w', 'a"b');
  await exec.waitFor(/T=/);
  await put('w', 'second');
  await put('ia', '1');
  await put('p/1', 'x');
  await put('p/1', 'y');
  await exec.waitFor(/V="second"/);
  await inter.waitFor(/^y$/m);
  await settle(500);
  log.push('exec', await exec.stop(), 'env key', await envKey.stop(), 'json', await json.stop(), 'interactive', await inter.stop());
  const failing = new Bg(tool, [...g, 'watch', 'f', '--', 'sh', '-c', 'exit 2']);
  await settle();
  await put('f', '1');
  log.push(`failing command: exit ${await failing.exited()}`, await failing.stop());
  const fromRev = new Bg(tool, [...g, 'watch', '--rev', '1', '--prefix', 'p', '--prev-kv']);
  await fromRev.waitFor(/^y$/m);
  log.push('from revision 1', await fromRev.stop());
  const range = new Bg(tool, [...g, '-w', 'fields', 'watch', 'ia', 'w', '--rev', '2']);
  await range.waitFor(/"Value" : "1"/);
  log.push('range', await range.stop());
  return log.join('\n');
}

describe('cairnctl watch against etcdctl', () => {
  it('prints what etcdctl prints, each on a fresh cairn', async () => {
    const [a, b] = await Promise.all([startCairn(), startCairn()]);
    expectSame(await runSteps('etcdctl', ['--endpoints', a.endpoint], STEPS, [a.endpoint]), await runSteps('cairnctl', ['--endpoints', b.endpoint], STEPS, [b.endpoint]), 'watch');
    const [x, y] = await Promise.all([scenario('etcdctl', a.endpoint), scenario('cairnctl', b.endpoint)]);
    expect(y).toBe(x);
    expect(x).toContain('T=\\"PUT\\" K=\\"w\\"');
  }, 120_000);
});
