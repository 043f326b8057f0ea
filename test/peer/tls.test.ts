/**
 * Peer TLS at the socket level (src/peer/sockets.ts): who may connect, checked on both
 * sides. Certificates from a test CA made with openssl for each run.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo, Server, Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../bench/lib/procs';
import { TestCa } from '../helpers/test-ca';
import { peerSockets, type PeerTls } from '../../src/peer/sockets';
import { parsePeerUrl } from '../../src/peer/url';

let dir: string;
const servers: Server[] = [];
const pem = (name: string): Buffer => readFileSync(join(dir, name));

beforeAll(() => {
  dir = makeTempDir('cairn-peer-tls-');
  const certs = new TestCa(dir);
  certs.ca('ca');
  certs.issue('a', 'member-a', { san: 'DNS:peer-a.test,IP:127.0.0.1' });
  certs.issue('b', 'member-b', { san: 'DNS:peer-b.test,IP:127.0.0.1' });
});

afterAll(() => {
  for (const s of servers) s.close();
});

function tlsOf(name: string, extra: Partial<PeerTls> = {}): PeerTls {
  return { options: { cert: pem(`${name}.pem`), key: pem(`${name}.key`), ca: pem('ca.pem') }, verify: true, requireClientCert: true, ...extra };
}

/** Listens as `server`, dials as `client`; whether the server accepted the connection, and why not. */
async function connect(server: PeerTls, client: PeerTls): Promise<{ accepted: boolean; dialed: boolean; refusals: string[]; dialError?: string }> {
  const refusals: string[] = [];
  let accepted = false;
  const listening = await peerSockets({ ...server, onRefused: (r) => refusals.push(r) }).listen(parsePeerUrl('https://127.0.0.1:0'), (s: Socket) => {
    accepted = true;
    s.destroy();
  });
  servers.push(listening);
  const port = (listening.address() as AddressInfo).port;
  const { socket, connected } = peerSockets(client).dial(parsePeerUrl(`https://127.0.0.1:${port}`), 2000);
  let dialed = false;
  let dialError: string | undefined;
  await connected.then(
    () => (dialed = true),
    (e: Error) => (dialError = e.message),
  );
  await new Promise((r) => setTimeout(r, 200));
  socket.destroy();
  return { accepted, dialed, refusals, dialError };
}

describe('peer TLS', () => {
  it('members with certificates from the trusted CA connect', async () => {
    const r = await connect(tlsOf('a'), tlsOf('b'));
    expect(r.dialed).toBe(true);
    expect(r.accepted).toBe(true);
  });

  it('--peer-cert-allowed-hostname: a dialing member whose certificate is not valid for the name is refused', async () => {
    const ok = await connect(tlsOf('a', { allowedHostname: 'peer-b.test' }), tlsOf('b'));
    expect(ok.accepted).toBe(true);
    const refused = await connect(tlsOf('a', { allowedHostname: 'peer-a.test' }), tlsOf('b'));
    expect(refused.accepted).toBe(false);
    expect(refused.refusals.join(' ')).toContain('not valid for the allowed host name "peer-a.test"');
  });

  it('--peer-cert-allowed-cn holds in both directions: a member will not send to a peer with another name', async () => {
    const inbound = await connect(tlsOf('a', { allowedCn: 'member-a' }), tlsOf('b'));
    expect(inbound.accepted).toBe(false);
    expect(inbound.refusals.join(' ')).toContain('"member-b" is not the allowed "member-a"');
    const outbound = await connect(tlsOf('a'), tlsOf('b', { allowedCn: 'member-b' }));
    expect(outbound.dialed).toBe(false);
    expect(outbound.dialError).toContain('"member-a" is not the allowed "member-b"');
  });

  it('without TLS settings an https peer URL cannot be dialed, with the reason', async () => {
    const { connected } = peerSockets(undefined).dial(parsePeerUrl('https://127.0.0.1:1'), 500);
    await expect(connected).rejects.toThrow('a TLS peer URL needs --peer-cert-file/--peer-key-file or --peer-auto-tls');
  });
});
