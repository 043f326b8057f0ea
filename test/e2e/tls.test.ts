import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdctl, freePort, makeTempDir } from '../../bench/lib/procs';
import { spawnCairn } from '../helpers/servers';
import { TestCa } from '../helpers/test-ca';

// TLS on the client port with etcd's flags, driven by etcd's etcdctl: a CA-signed server
// certificate, http and https on one port, client certificate authentication, and
// --auto-tls. Certificates are made with openssl for each run.

let dir: string;
const servers: ChildProcess[] = [];

beforeAll(() => {
  dir = makeTempDir('cairn-tls-');
  const certs = new TestCa(dir);
  certs.ca('ca');
  certs.ca('rogue-ca');
  certs.issue('server', 'cairn', { san: 'IP:127.0.0.1,DNS:localhost' });
  certs.issue('client', 'root');
  certs.issue('revoked', 'root');
  certs.issue('rogue', 'root', { ca: 'rogue-ca' });
  certs.revoke('revoked');
});
afterAll(() => {
  for (const s of servers) s.kill('SIGKILL');
});

/** Starts cairn with exactly these client URLs and flags; resolves when it says it is ready. */
async function start(urls: (port: number) => string[], flags: string[]): Promise<{ output: () => string; port: number }> {
  const port = await freePort();
  const list = urls(port);
  const args = ['--data-dir', makeTempDir('cairn-tls-data-'), '--listen-client-urls', list.join(','), '--advertise-client-urls', list[0], ...flags];
  return { output: await spawnCairn(args, servers), port };
}

const f = (name: string): string => join(dir, name);

describe('client TLS', () => {
  it('serves https with a CA-signed certificate and plain http on the same port', async () => {
    const { port } = await start((p) => [`https://127.0.0.1:${p}`, `http://127.0.0.1:${p}`], ['--cert-file', f('server.pem'), '--key-file', f('server.key')]);
    const put = await etcdctl(`https://127.0.0.1:${port}`, ['--cacert', f('ca.pem'), 'put', 'tls', 'yes']);
    expect(put.code, put.stderr).toBe(0);
    const plain = await etcdctl(`http://127.0.0.1:${port}`, ['get', 'tls', '--print-value-only']);
    expect(plain.stdout.trim()).toBe('yes');
    const status = await etcdctl(`https://127.0.0.1:${port}`, ['--cacert', f('ca.pem'), 'endpoint', 'status']);
    expect(status.code, status.stderr).toBe(0);
  });

  it('an https-only port refuses plaintext, and --client-cert-auth refuses clients without a certificate', async () => {
    const { port } = await start((p) => [`https://127.0.0.1:${p}`], [
      '--cert-file', f('server.pem'), '--key-file', f('server.key'), '--trusted-ca-file', f('ca.pem'), '--client-cert-auth',
    ]);
    const url = `https://127.0.0.1:${port}`;
    const noCert = await etcdctl(url, ['--cacert', f('ca.pem'), '--dial-timeout', '2s', '--command-timeout', '3s', 'put', 'a', 'b']);
    expect(noCert.code).not.toBe(0);
    const withCert = await etcdctl(url, ['--cacert', f('ca.pem'), '--cert', f('client.pem'), '--key', f('client.key'), 'put', 'a', 'b']);
    expect(withCert.code, withCert.stderr).toBe(0);
    const plain = await etcdctl(`http://127.0.0.1:${port}`, ['--dial-timeout', '2s', '--command-timeout', '3s', 'get', 'a']);
    expect(plain.code).not.toBe(0);
  });

  it('--client-cert-auth refuses a certificate from another CA (whatever its name) and, with --client-crl-file, a revoked one', async () => {
    const { port } = await start((p) => [`https://127.0.0.1:${p}`], [
      '--cert-file', f('server.pem'), '--key-file', f('server.key'), '--trusted-ca-file', f('ca.pem'), '--client-cert-auth',
      '--client-crl-file', f('crl.pem'), '--cipher-suites', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
    ]);
    const url = `https://127.0.0.1:${port}`;
    const as = (name: string): string[] => ['--cacert', f('ca.pem'), '--cert', f(`${name}.pem`), '--key', f(`${name}.key`), '--dial-timeout', '2s', '--command-timeout', '3s'];
    const good = await etcdctl(url, [...as('client'), 'put', 'k', 'v']);
    expect(good.code, good.stderr).toBe(0);
    for (const name of ['rogue', 'revoked']) {
      const r = await etcdctl(url, [...as(name), 'get', 'k']);
      expect(r.code, `${name} certificate must be refused`).not.toBe(0);
      expect(r.stdout).not.toContain('v');
    }
  });

  it('--auto-tls generates a self-signed certificate kept in the data dir', async () => {
    const { output, port } = await start((p) => [`https://127.0.0.1:${p}`], ['--auto-tls']);
    const put = await etcdctl(`https://127.0.0.1:${port}`, ['--insecure-transport=false', '--insecure-skip-tls-verify', 'put', 'auto', 'tls']);
    expect(put.code, put.stderr).toBe(0);
    expect(output()).toContain('generated a self-signed client certificate');
  });
});
