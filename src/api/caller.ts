import type { Metadata } from '@grpc/grpc-js';
import type { AuthInfo } from '../auth/store';
import type { CairnServer } from '../server/server';

// Who is calling: the token in the call's metadata ("token", as clientv3 sends it, or
// "authorization", as etcd's HTTP gateway passes it on), else the common name of the
// client's verified TLS certificate. TLS is terminated before gRPC sees the connection
// (one port serves gRPC, HTTP and both schemes), so the certificate's name is recorded
// here by remote address when the handshake completes and looked up by the call's peer.

const certNames = new Map<string, string>();

/** Records the verified client certificate's common name for a connection until it closes. */
export function rememberCertName(remoteAddress: string | undefined, remotePort: number | undefined, commonName: string, onClose: (f: () => void) => void): void {
  if (remoteAddress === undefined || remotePort === undefined || commonName === '') return;
  const key = peerKey(remoteAddress, remotePort);
  certNames.set(key, commonName);
  onClose(() => {
    if (certNames.get(key) === commonName) certNames.delete(key);
  });
}

function peerKey(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export interface CallLike {
  metadata?: Metadata;
  getPeer?: () => string;
}

export function tokenOf(metadata: Metadata | undefined): string | undefined {
  if (metadata === undefined) return undefined;
  for (const key of ['token', 'authorization']) {
    const v = metadata.get(key)[0];
    if (typeof v === 'string' && v !== '') return v;
  }
  return undefined;
}

/** The caller of a gRPC call (or a gateway request shaped like one); throws etcd's invalid-token error. */
export function callerOf(member: CairnServer, call: CallLike, certName?: string): AuthInfo {
  const cn = certName ?? (member.config.clientCertAuth && call.getPeer ? certNames.get(normalisePeer(call.getPeer())) : undefined);
  return member.callerFrom(tokenOf(call.metadata), cn);
}

/** grpc-js gives IPv6 peers as "addr:port" without brackets in some versions. */
function normalisePeer(peer: string): string {
  const m = /^(.*):(\d+)$/.exec(peer);
  if (m === null) return peer;
  return peerKey(m[1].replace(/^\[(.*)\]$/, '$1'), Number(m[2]));
}
