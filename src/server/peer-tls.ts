import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { opensslCiphers, selfSigned } from '../api/tls';
import type { PeerTls } from '../peer/sockets';
import type { ServerConfig } from './config';

// TLS between members, from etcd's --peer-* flags: the member's certificate and key (given,
// or made once under <data-dir>/fixtures/peer with --peer-auto-tls), the CAs peers'
// certificates must chain to, a CRL of revoked ones, and who may dial in. --cipher-suites
// applies here too, as in etcd. With auto TLS, as
// in etcd, certificates are not verified (they are all self-signed): the link is encrypted,
// not authenticated, unless --peer-trusted-ca-file is given too.

export async function peerTls(cfg: ServerConfig, log: Logger): Promise<PeerTls | undefined> {
  let cert: Buffer;
  let key: Buffer;
  if (cfg.peerCertFile !== '' || cfg.peerKeyFile !== '') {
    if (cfg.peerCertFile === '' || cfg.peerKeyFile === '') throw new Error('--peer-cert-file and --peer-key-file must be given together');
    // One after the other: with both missing, the error names the certificate, every time.
    cert = await readFile(cfg.peerCertFile);
    key = await readFile(cfg.peerKeyFile);
  } else if (cfg.peerAutoTls) {
    ({ cert, key } = await selfSigned(join(cfg.dataDir, 'fixtures', 'peer'), [...cfg.listenPeerUrls, ...cfg.initialAdvertisePeerUrls], log, 'peer'));
  } else {
    const secure = [...cfg.listenPeerUrls, ...cfg.initialAdvertisePeerUrls].find((u) => /^(https|unixs):/.test(u));
    if (secure !== undefined) throw new Error(`peer URL ${secure} needs --peer-cert-file and --peer-key-file, or --peer-auto-tls`);
    return undefined;
  }
  if (cfg.peerClientCertAuth && cfg.peerTrustedCaFile === '') throw new Error('--peer-client-cert-auth needs --peer-trusted-ca-file');
  const ca = cfg.peerTrustedCaFile !== '' ? await readFile(cfg.peerTrustedCaFile) : undefined;
  const crl = cfg.peerCrlFile !== '' ? await readFile(cfg.peerCrlFile) : undefined;
  const autoOnly = cfg.peerAutoTls && cfg.peerCertFile === '' && ca === undefined;
  return {
    options: { cert, key, ca, crl, minVersion: 'TLSv1.2', ciphers: cfg.cipherSuites !== '' ? opensslCiphers(cfg.cipherSuites) : undefined },
    verify: !autoOnly,
    requireClientCert: cfg.peerClientCertAuth,
    allowedCn: cfg.peerCertAllowedCn !== '' ? cfg.peerCertAllowedCn : undefined,
    allowedHostname: cfg.peerCertAllowedHostname !== '' ? cfg.peerCertAllowedHostname : undefined,
    onRefused: (reason) => log.warn({ reason }, 'refused a peer connection'),
  };
}
