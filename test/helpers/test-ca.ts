/**
 * Test certificates made with openssl in a directory of their own: CAs, certificates they
 * sign (with subject alternative names and both key usages), and a CRL revoking some.
 * Files are <name>.pem / <name>.key in `dir`.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class TestCa {
  constructor(readonly dir: string) {}

  path(name: string): string {
    return join(this.dir, name);
  }

  private ssl(...args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: 'ignore' });
  }

  /** A self-signed CA `name` (name.pem, name.key). */
  ca(name: string): void {
    this.ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`);
  }

  /** A certificate `name` with common name `cn`, signed by CA `ca`; `san` (e.g. "IP:127.0.0.1,DNS:localhost") adds names and server+client usage. */
  issue(name: string, cn: string, opts: { ca?: string; san?: string } = {}): void {
    const ca = opts.ca ?? 'ca';
    this.ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    const ext: string[] = [];
    if (opts.san !== undefined) {
      writeFileSync(this.path(`${name}.ext`), `subjectAltName=${opts.san}\nextendedKeyUsage=serverAuth,clientAuth`);
      ext.push('-extfile', `${name}.ext`);
    }
    this.ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', ...ext);
  }

  /** crl.pem from CA "ca", revoking the named certificates (openssl ca needs its little database). */
  revoke(...names: string[]): void {
    writeFileSync(this.path('index.txt'), '');
    writeFileSync(this.path('crlnumber'), '01\n');
    writeFileSync(this.path('ca.cnf'), '[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\ncrlnumber=crlnumber\ndefault_md=sha256\ndefault_crl_days=2\ncertificate=ca.pem\nprivate_key=ca.key\n');
    for (const n of names) this.ssl('ca', '-config', 'ca.cnf', '-revoke', `${n}.pem`);
    this.ssl('ca', '-config', 'ca.cnf', '-gencrl', '-out', 'crl.pem');
  }
}
