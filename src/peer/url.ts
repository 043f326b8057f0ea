// Peer URLs: where a member listens for, and dials, other members.
//
//   http://host:port     plain TCP (port 0 on a listen URL: the OS picks one)
//   https://host:port    TLS over TCP (--peer-cert-file/--peer-key-file or --peer-auto-tls)
//   unix:///abs/path     unix domain socket, absolute path
//   unix://rel/path      unix domain socket, path relative to the working directory
//   unixs://path         TLS over a unix domain socket
//
// `secure` says whether the socket is wrapped in TLS (sockets.ts / tls.ts).

export type Endpoint =
  | { kind: 'tcp'; url: string; host: string; port: number; secure: boolean }
  | { kind: 'unix'; url: string; path: string; secure: boolean };

/** sun_path is 108 bytes on Linux, including the terminating NUL. */
export const UNIX_PATH_BYTES_MAX = 107;

export class PeerUrlError extends Error {
  constructor(url: string, reason: string) {
    super(`invalid peer URL ${JSON.stringify(url)}: ${reason}`);
    this.name = 'PeerUrlError';
  }
}

export function parsePeerUrl(url: string): Endpoint {
  const scheme = url.slice(0, Math.max(0, url.indexOf('://'))).toLowerCase();
  if (scheme === 'unix' || scheme === 'unixs') return parseUnix(url, scheme === 'unixs');
  if (scheme === 'http' || scheme === 'https') return parseHttp(url, scheme === 'https');
  throw new PeerUrlError(url, 'scheme must be http://, https://, unix:// or unixs://');
}

function parseUnix(url: string, secure: boolean): Endpoint {
  const path = url.slice(url.indexOf('://') + 3);
  if (path === '' || path === '/') throw new PeerUrlError(url, 'missing socket path');
  if (Buffer.byteLength(path) > UNIX_PATH_BYTES_MAX) {
    throw new PeerUrlError(url, `socket path longer than ${UNIX_PATH_BYTES_MAX} bytes`);
  }
  return { kind: 'unix', url, path, secure };
}

function parseHttp(url: string, secure: boolean): Endpoint {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new PeerUrlError(url, 'not a URL');
  }
  if (u.username !== '' || u.password !== '') throw new PeerUrlError(url, 'credentials are not allowed');
  if (u.pathname !== '/' && u.pathname !== '') throw new PeerUrlError(url, 'a path is not allowed');
  if (u.search !== '' || u.hash !== '') throw new PeerUrlError(url, 'a query or fragment is not allowed');
  // URL drops a port equal to the scheme default (80), so look at the text itself.
  if (u.port === '' && !/:\d+\/?$/.test(url)) throw new PeerUrlError(url, 'a port is required');
  const port = u.port === '' ? (secure ? 443 : 80) : Number(u.port);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  if (host === '') throw new PeerUrlError(url, 'missing host');
  return { kind: 'tcp', url, host, port, secure };
}
