import { mkdir, readFile, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext, type TlsOptions } from 'node:tls';
import type { Logger } from 'pino';
import { generate } from 'selfsigned';
import { ServerConfig } from '../server/config';

// TLS on the client port: --cert-file/--key-file (or --auto-tls, a self-signed pair kept
// under <data-dir>/fixtures/client as etcd does), --trusted-ca-file with
// --client-cert-auth (clients must present a certificate signed by it), --client-crl-file
// (revoked client certificates are refused), --cipher-suites (etcd's Go names).

export interface ClientTls {
  /** For tls.createServer: certificate, key, CAs, CRL, ciphers, and whether a client certificate is required. */
  options: TlsOptions;
  requestCert: boolean;
}

// Go's names for the TLS 1.2 suites etcd accepts, mapped to OpenSSL's.
const CIPHER_SUITES: Record<string, string> = {
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
};

export function opensslCiphers(goNames: string): string {
  return goNames
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '')
    .map((n) => {
      const o = CIPHER_SUITES[n];
      if (o === undefined) throw new Error(`--cipher-suites: unknown or unsupported cipher suite "${n}"`);
      return o;
    })
    .join(':');
}

export async function clientTls(cfg: ServerConfig, log: Logger): Promise<ClientTls | undefined> {
  let cert: Buffer;
  let key: Buffer;
  if (cfg.certFile !== '' || cfg.keyFile !== '') {
    if (cfg.certFile === '' || cfg.keyFile === '') throw new Error('--cert-file and --key-file must be given together');
    // One after the other: with both missing, the error names the certificate, every time.
    cert = await readFile(cfg.certFile);
    key = await readFile(cfg.keyFile);
  } else if (cfg.autoTls) {
    ({ cert, key } = await selfSigned(join(cfg.dataDir, 'fixtures', 'client'), cfg.listenClientUrls, log));
  } else {
    return undefined;
  }
  if (cfg.clientCertAuth && cfg.trustedCaFile === '') throw new Error('--client-cert-auth needs --trusted-ca-file');
  const ca = cfg.trustedCaFile !== '' ? await readFile(cfg.trustedCaFile) : undefined;
  const crl = cfg.clientCrlFile !== '' ? await readFile(cfg.clientCrlFile) : undefined;
  const options: TlsOptions = {
    cert,
    key,
    ca,
    crl,
    ciphers: cfg.cipherSuites !== '' ? opensslCiphers(cfg.cipherSuites) : undefined,
    minVersion: 'TLSv1.2',
    requestCert: cfg.clientCertAuth,
    rejectUnauthorized: cfg.clientCertAuth,
  };
  createSecureContext(options); // bad PEM, CA or CRL: fail at start, not at the first handshake
  return { options, requestCert: cfg.clientCertAuth };
}

/** A self-signed certificate for the listen hosts, made once and kept (etcd's --auto-tls). */
export async function selfSigned(dir: string, urls: string[], log: Logger, what = 'client'): Promise<{ cert: Buffer; key: Buffer }> {
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  const exists = await access(certPath).then(
    () => true,
    () => false,
  );
  if (!exists) {
    const hosts = new Set(['localhost', '127.0.0.1']);
    for (const u of urls) {
      try {
        const h = new URL(u).hostname.replace(/^\[(.*)\]$/, '$1');
        if (h !== '') hosts.add(h);
      } catch {
        // not a URL with a host (unix sockets)
      }
    }
    const altNames = [...hosts].map((h) => (/^[\d.]+$/.test(h) || h.includes(':') ? { type: 7 as const, ip: h } : { type: 2 as const, value: h }));
    const pems = await generate([{ name: 'commonName', value: 'cairn' }], {
      keySize: 2048,
      // OpenSSL 3 refuses SHA-1 signatures in handshakes between node processes (peer TLS).
      algorithm: 'sha256',
      extensions: [{ name: 'subjectAltName', altNames }],
    });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(certPath, pems.cert, { mode: 0o600 });
    await writeFile(keyPath, pems.private, { mode: 0o600 });
    log.info({ cert: certPath }, `generated a self-signed ${what} certificate (--${what === 'peer' ? 'peer-' : ''}auto-tls)`);
  }
  return { cert: await readFile(certPath), key: await readFile(keyPath) };
}
