import { randomBytes } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { AuthInfo } from '../auth/store';
import type { CairnServer } from '../server/server';

// Who is calling: the token in the call's metadata ("token", as clientv3 sends it, or
// "authorization", as etcd's HTTP gateway passes it on), else the common name of the
// client's verified TLS certificate (--client-cert-auth).
//
// TLS is terminated before gRPC sees the connection (one port serves gRPC, HTTP and both
// schemes), so gRPC's own view of the peer certificate is empty. The connection layer puts
// the certificate's name on every request instead, as a header whose name is random per
// process: no client can send it, and one that guesses is dropped by the rewriter.

export const CERT_NAME_HEADER = `x-cairn-cert-cn-${randomBytes(12).toString('hex')}`;

/** What callerOf reads of a call's metadata: grpc-js's Metadata, or request headers (direct.ts). */
export interface MetadataLike {
  get(key: string): Array<string | Buffer>;
}

export interface CallLike {
  metadata?: MetadataLike;
}

export function tokenOf(metadata: MetadataLike | undefined): string | undefined {
  if (metadata === undefined) return undefined;
  for (const key of ['token', 'authorization']) {
    const v = metadata.get(key)[0];
    if (typeof v === 'string' && v !== '') return v;
  }
  return undefined;
}

/** The caller of a gRPC call (or a gateway request shaped like one); throws etcd's invalid-token error. */
export function callerOf(member: CairnServer, call: CallLike): AuthInfo {
  if (!member.auth.enabled) return member.callerFrom(undefined, undefined); // every call: read no metadata
  const cn = member.config.clientCertAuth ? call.metadata?.get(CERT_NAME_HEADER)[0] : undefined;
  return member.callerFrom(tokenOf(call.metadata), typeof cn === 'string' ? cn : undefined);
}

/** The verified client certificate's common name on a TLS connection (HTTP gateway), if any. */
export function certNameOf(socket: unknown): string | undefined {
  const tls = socket as Partial<TLSSocket>;
  if (typeof tls.getPeerCertificate !== 'function') return undefined;
  const cn = tls.getPeerCertificate()?.subject?.CN;
  return typeof cn === 'string' && cn !== '' ? cn : undefined;
}
