/**
 * cairnctl's TLS flags (--cacert, --cert, --key, --insecure-skip-tls-verify,
 * --insecure-transport) and the client library's TLS options, against cairn serving
 * https with a CA-signed certificate and --client-cert-auth: etcdctl and cairnctl run
 * the same steps against the same server and print the same.
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, makeTempDir } from '../../bench/lib/procs';
import { Client } from '../../src/client';
import { spawnCairn } from '../helpers/servers';
import { TestCa } from '../helpers/test-ca';
import { expectSame, runSteps, type GStep } from './golden-lib';

let dir: string;
const servers: ChildProcess[] = [];
const f = (name: string): string => join(dir, name);

beforeAll(() => {
  dir = makeTempDir('cairnctl-tls-');
  const certs = new TestCa(dir);
  certs.ca('ca');
  certs.issue('server', 'cairn', { san: 'IP:127.0.0.1,DNS:localhost' });
  certs.issue('client', 'root');
});

afterAll(() => {
  for (const s of servers) s.kill('SIGKILL');
});

async function startTls(flags: string[]): Promise<number> {
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  await spawnCairn([
    '--data-dir', makeTempDir('cairnctl-tls-data-'),
    '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', `http://127.0.0.1:${await freePort()}`,
    '--cert-file', f('server.pem'), '--key-file', f('server.key'), ...flags,
  ], servers);
  return port;
}

const code = (r: { code: number }): string => String(r.code);

describe('cairnctl TLS flags against etcdctl', () => {
  it('prints what etcdctl prints on an https member with client certificate authentication', async () => {
    const port = await startTls(['--trusted-ca-file', f('ca.pem'), '--client-cert-auth']);
    const https = `https://127.0.0.1:${port}`;
    const bare = `127.0.0.1:${port}`;
    const cert = ['--cacert', f('ca.pem'), '--cert', f('client.pem'), '--key', f('client.key')];
    const short = ['--dial-timeout', '1s', '--command-timeout', '2s'];
    const steps: GStep[] = [
      { args: ['--endpoints', https, ...cert, 'put', 'k', 'v'] },
      { args: ['--endpoints', https, ...cert, 'get', 'k'] },
      { args: ['--endpoints', bare, ...cert, 'get', 'k'], note: 'no scheme: TLS because certificates are given' },
      { args: ['--endpoints', bare, '--cert', f('client.pem'), '--key', f('client.key'), '--insecure-skip-tls-verify', 'get', 'k', '--print-value-only'] },
      { args: ['--endpoints', https, ...cert, '-w', 'json', 'endpoint', 'health'], project: (r) => `${r.code} ${/"health":true/.test(r.stdout)}` },
      { args: ['--endpoints', https, '--cacert', f('ca.pem'), ...short, 'get', 'k'], note: 'no client certificate', project: code },
      { args: ['--endpoints', https, '--cert', f('client.pem'), '--key', f('client.key'), ...short, 'get', 'k'], note: 'unknown CA', project: code },
      { args: ['--endpoints', https, '--cacert', f('nothing.pem'), 'get', 'k'], note: 'missing file', project: code },
      { args: ['--endpoints', https, '--cacert=', 'get', 'k'] },
      { args: ['--endpoints', https, '--cert=', 'get', 'k'] },
    ];
    expectSame(await runSteps('etcdctl', [], steps, [https]), await runSteps('cairnctl', [], steps, [https]), 'tls');
  }, 120_000);

  it('the client library connects with TLS options given as paths or as buffers', async () => {
    const port = await startTls(['--trusted-ca-file', f('ca.pem'), '--client-cert-auth']);
    const a = new Client({ endpoints: [`https://127.0.0.1:${port}`], tls: { ca: f('ca.pem'), cert: f('client.pem'), key: f('client.key') } });
    const b = new Client({
      endpoints: [`127.0.0.1:${port}`],
      tls: { ca: fs.readFileSync(f('ca.pem')), cert: fs.readFileSync(f('client.pem')), key: fs.readFileSync(f('client.key')) },
    });
    const c = new Client({ endpoints: [`https://127.0.0.1:${port}`], tls: { ca: f('ca.pem') }, dialTimeoutMs: 1000, requestTimeoutMs: 2000 });
    try {
      await a.put('lib', 'tls');
      expect(await b.getString('lib')).toBe('tls');
      await expect(c.get('lib')).rejects.toThrow();
    } finally {
      a.close();
      b.close();
      c.close();
    }
  }, 60_000);
});
