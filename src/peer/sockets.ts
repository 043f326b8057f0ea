import { unlinkSync } from 'node:fs';
import * as net from 'node:net';
import type { Endpoint } from './url';

// The one place that opens sockets. TLS (https:// and unixs:// peer URLs) will be a second
// implementation of PeerSockets built on node:tls, whose TLSSocket is a net.Socket: the
// transport only needs `connected` to resolve once the socket is ready for application data.

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

export const plainSockets: PeerSockets = {
  dial(endpoint, timeoutMs) {
    const socket =
      endpoint.kind === 'tcp' ? net.connect({ host: endpoint.host, port: endpoint.port }) : net.connect({ path: endpoint.path });
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
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.off('close', onClose);
        resolve();
      });
    });
    return { socket, connected };
  },

  async listen(endpoint, onConnection) {
    const server = net.createServer({ noDelay: true }, onConnection);
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
