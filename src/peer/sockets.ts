import { unlinkSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Endpoint } from './url';

// The one place that opens sockets: plain TCP and unix sockets, or TLS over either for
// https:// and unixs:// peer URLs. A TLSSocket is a net.Socket: the transport only needs
// `connected` to resolve once the socket is ready for application data.

/** How TLS peer connections are made and accepted (etcd's --peer-* TLS flags). */
export interface PeerTls {
  /** This member's certificate and key (also presented when dialing), trusted CAs, CRL. */
  options: tls.SecureContextOptions;
  /** Check the other side's certificate against the trusted CAs (off with --peer-auto-tls, as etcd). */
  verify: boolean;
  /** --peer-client-cert-auth: a dialing peer must present a certificate the CAs signed. */
  requireClientCert: boolean;
  /** --peer-cert-allowed-cn: a dialing peer's certificate must carry this common name. */
  allowedCn?: string;
  /** --peer-cert-allowed-hostname: a dialing peer's certificate must be valid for this host name. */
  allowedHostname?: string;
  /** Told why an incoming connection was refused. */
  onRefused?: (reason: string) => void;
}

export interface Dialing {
  /** Available at once so that the caller can destroy it while it connects. */
  socket: net.Socket;
  /** Resolves when the socket can carry frames; rejects on error or timeout. */
  connected: Promise<void>;
}

export interface PeerSockets {
  dial(endpoint: Endpoint, timeoutMs: number): Dialing;
  listen(endpoint: Endpoint, onConnection: (socket: net.Socket) => void): Promise<net.Server>;
}

/** Sockets for every scheme; without `secure`, https:// and unixs:// peers cannot be reached or served. */
export function peerSockets(secure: PeerTls | undefined): PeerSockets {
  let clientContext: tls.SecureContext | undefined;
  return {
    dial(endpoint, timeoutMs) {
      if (!endpoint.secure) return dialWith(net.connect(endpoint.kind === 'tcp' ? { host: endpoint.host, port: endpoint.port } : { path: endpoint.path }), 'connect', timeoutMs);
      if (secure === undefined) {
        const socket = new net.Socket();
        const connected = Promise.reject(new Error(`${endpoint.url}: a TLS peer URL needs --peer-cert-file/--peer-key-file or --peer-auto-tls`));
        connected.catch(() => undefined);
        return { socket, connected };
      }
      const common = { secureContext: (clientContext ??= tls.createSecureContext(secure.options)), rejectUnauthorized: secure.verify };
      const socket =
        endpoint.kind === 'tcp'
          ? tls.connect({ ...common, host: endpoint.host, port: endpoint.port, servername: net.isIP(endpoint.host) ? undefined : endpoint.host })
          : tls.connect({ ...common, path: endpoint.path, checkServerIdentity: () => undefined });
      const dialing = dialWith(socket, 'secureConnect', timeoutMs);
      // --peer-cert-allowed-cn / -hostname hold in both directions: a member also refuses
      // to send to a peer whose certificate does not carry the allowed name.
      const checked = dialing.connected.then(() => {
        const refusal = checkPeerCertificate(socket, secure);
        if (refusal === undefined) return;
        socket.destroy();
        throw new Error(`${endpoint.url}: ${refusal}`);
      });
      return { socket, connected: checked };
    },

    async listen(endpoint, onConnection) {
      let server: net.Server;
      if (!endpoint.secure) {
        server = net.createServer({ noDelay: true }, onConnection);
      } else {
        if (secure === undefined) throw new Error(`--listen-peer-urls ${endpoint.url}: a TLS peer URL needs --peer-cert-file/--peer-key-file or --peer-auto-tls`);
        const ask = secure.requireClientCert || secure.allowedCn !== undefined || secure.allowedHostname !== undefined;
        // A tls.Server builds its context from the options themselves (it ignores `secureContext`).
        server = tls.createServer({ ...secure.options, requestCert: ask, rejectUnauthorized: secure.requireClientCert }, (socket) => {
          const refusal = checkPeerCertificate(socket, secure);
          if (refusal !== undefined) {
            secure.onRefused?.(refusal);
            socket.destroy();
            return;
          }
          socket.setNoDelay(true);
          onConnection(socket);
        });
        server.on('tlsClientError', (err) => secure.onRefused?.(err.message));
      }
      try {
        await listenOnce(server, endpoint);
      } catch (err) {
        if (endpoint.kind !== 'unix' || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
        if (!(await isStaleUnixSocket(endpoint.path))) throw err;
        // A socket file left by a process that is gone: nobody answers on it.
        unlinkSync(endpoint.path);
        await listenOnce(server, endpoint);
      }
      return server;
    },
  };
}

/** Why a dialing peer's certificate is not accepted (--peer-cert-allowed-cn / -hostname), or undefined. */
function checkPeerCertificate(socket: tls.TLSSocket, secure: PeerTls): string | undefined {
  if (secure.allowedCn === undefined && secure.allowedHostname === undefined) return undefined;
  const cert = socket.getPeerCertificate();
  if (!socket.authorized || cert === undefined || Object.keys(cert).length === 0) return 'no verified peer certificate';
  if (secure.allowedCn !== undefined && cert.subject?.CN !== secure.allowedCn) {
    return `certificate common name ${JSON.stringify(cert.subject?.CN ?? '')} is not the allowed ${JSON.stringify(secure.allowedCn)}`;
  }
  if (secure.allowedHostname !== undefined && tls.checkServerIdentity(secure.allowedHostname, cert) !== undefined) {
    return `certificate is not valid for the allowed host name ${JSON.stringify(secure.allowedHostname)}`;
  }
  return undefined;
}

/** Plain TCP and unix sockets only. */
export const plainSockets: PeerSockets = peerSockets(undefined);

function dialWith(socket: net.Socket, readyEvent: 'connect' | 'secureConnect', timeoutMs: number): Dialing {
    const connected = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => socket.destroy(new Error(`dial timed out after ${timeoutMs} ms`)), timeoutMs);
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      const onClose = (): void => {
        clearTimeout(timer);
        reject(new Error('connection closed while dialing'));
      };
      socket.once('error', onError);
      socket.once('close', onClose);
      socket.once(readyEvent, () => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.off('close', onClose);
        resolve();
      });
    });
    return { socket, connected };
}

function listenOnce(server: net.Server, endpoint: Endpoint): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    if (endpoint.kind === 'tcp') server.listen({ host: endpoint.host, port: endpoint.port }, onListening);
    else server.listen({ path: endpoint.path }, onListening);
  });
}

function isStaleUnixSocket(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(false);
    });
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}
