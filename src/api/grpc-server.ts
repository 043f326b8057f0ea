import { Server, ServerCredentials, status as Status } from '@grpc/grpc-js';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { unlink } from 'node:fs/promises';
import type { Logger } from 'pino';
import { GRPC_OVERHEAD_BYTES } from '../server/config';
import { CairnServer } from '../server/server';
import { authImplementation, authService } from './auth';
import { clusterImplementation, clusterService } from './cluster';
import { createServer as createTlsServer, TLSSocket } from 'node:tls';
import { HTTP2_PREFACE } from './h2/connection';
import { CERT_NAME_HEADER } from './caller';
import { clientTls } from './tls';
import { httpHandler } from './http';
import { maintenanceImplementation, maintenanceService } from './maintenance';
import { instrument } from './instrument';
import { DirectCalls } from './direct';
import { ClientFront, duplexPair } from './h2/front';
import { electionImplementation, electionService } from './election';
import { kvImplementation, kvService } from './kv';
import { lockImplementation, lockService } from './lock';
import { leaseImplementation, leaseService } from './lease';
import { Metrics } from './metrics';
import { ErrorMapper } from './status';
import { watchImplementation, watchService } from './watch';

// The client port: every --listen-client-urls address serves gRPC and HTTP/1.1 on one
// socket, as etcd does. The first bytes of a connection decide: the HTTP/2 connection
// preface goes to the gRPC server, anything else to the HTTP handler (/health, /version,
// /metrics).

/** The first byte of a TLS connection (a handshake record). */
const TLS_HANDSHAKE = 0x16;

export interface ClientListener {
  url: string;
  /** The port actually bound (differs from the URL's when it asked for port 0). */
  port: number;
}


export class ApiServer {
  private constructor(
    private readonly grpc: Server,
    private readonly http: HttpServer,
    private readonly sockets: NetServer[],
    readonly listeners: ClientListener[],
    private readonly front: ClientFront,
  ) {}

  static async start(member: CairnServer, log: Logger): Promise<ApiServer> {
    const cfg = member.config;
    const grpc = new Server({
      'grpc.max_receive_message_length': cfg.maxRequestBytes + GRPC_OVERHEAD_BYTES,
      'grpc.max_send_message_length': 2 ** 31 - 1,
      'grpc.max_concurrent_streams': cfg.maxConcurrentStreams,
    });
    const errors = new ErrorMapper(log);
    const metrics = new Metrics(member);
    const kv = instrument(kvService, kvImplementation(member, errors), metrics);
    grpc.addService(kvService, kv);
    const watch = instrument(watchService, watchImplementation(member, log), metrics);
    grpc.addService(watchService, watch);
    const lease = instrument(leaseService, leaseImplementation(member, errors), metrics);
    grpc.addService(leaseService, lease);
    grpc.addService(maintenanceService, instrument(maintenanceService, maintenanceImplementation(member, errors, log), metrics));
    grpc.addService(clusterService, instrument(clusterService, clusterImplementation(member, errors), metrics));
    grpc.addService(lockService, instrument(lockService, lockImplementation(member, errors), metrics));
    grpc.addService(electionService, instrument(electionService, electionImplementation(member, errors), metrics));
    grpc.addService(authService, instrument(authService, authImplementation(member, errors), metrics));
    const injector = grpc.createConnectionInjector(ServerCredentials.createInsecure());
    const direct = new DirectCalls(cfg.maxRequestBytes + GRPC_OVERHEAD_BYTES);
    direct.add(watchService, watch, ['Watch']);
    direct.add(kvService, kv, ['Range', 'Put', 'DeleteRange', 'Txn', 'Compact']);
    direct.add(leaseService, lease, ['LeaseGrant', 'LeaseRevoke', 'LeaseTimeToLive', 'LeaseLeases', 'LeaseKeepAlive']);
    log.info({ methods: direct.paths }, "serving the hot methods on cairn's own HTTP/2");
    // Client connections speak HTTP/2 to cairn's own implementation (h2/); it serves the
    // hot methods and relays every other call to grpc-js over an in-memory connection.
    const front = new ClientFront({
      direct,
      maxConcurrentStreams: cfg.maxConcurrentStreams,
      internal: () => {
        const [outer, inner] = duplexPair();
        injector.injectConnection(inner);
        return outer;
      },
      log,
    });
    const http = createHttpServer(httpHandler(member, metrics, log));
    const tlsConfig = await clientTls(cfg, log);
    const tlsServer =
      tlsConfig === undefined
        ? undefined
        : createTlsServer({
            ...tlsConfig.options,
            // HTTP/1.1 first: clients offering both (curl, browsers) get /health and the
            // gateway over it; gRPC clients offer only h2 and get it.
            ALPNProtocols: ['http/1.1', 'h2'],
          });
    tlsServer?.on('secureConnection', (secure: TLSSocket) => {
      // With --client-cert-auth the verified certificate's common name is the user when a
      // call carries no token (etcd's AuthInfoFromTLS).
      const cn = tlsConfig?.requestCert && secure.authorized ? secure.getPeerCertificate()?.subject?.CN : undefined;
      secure.on('error', () => secure.destroy());
      route(secure, { plain: false, secure: true }, true, typeof cn === 'string' && cn !== '' ? cn : undefined);
    });
    tlsServer?.on('tlsClientError', (e) => log.debug({ err: e }, 'TLS connection refused'));
    // One socket per address: a URL list may name the same port as http:// and https://.
    const route = (socket: Socket, mode: { plain: boolean; secure: boolean }, decrypted = false, certName?: string): void => {
      socket.setNoDelay(true);
      let seen: Buffer = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
        if (!decrypted && seen[0] === TLS_HANDSHAKE) {
          socket.removeListener('data', onData);
          if (!mode.secure || tlsConfig === undefined) {
            socket.destroy();
            return;
          }
          socket.pause();
          socket.unshift(seen);
          // The TLS server takes the socket with its first bytes, verifies the client's
          // certificate (chain, CRL) and drops the connection when it must; it then hands
          // the decrypted socket back through 'secureConnection'.
          tlsServer!.emit('connection', socket);
          return;
        }
        if (!decrypted && !mode.plain) {
          socket.removeListener('data', onData); // plaintext on an https-only address
          socket.destroy();
          return;
        }
        const n = Math.min(seen.length, HTTP2_PREFACE.length);
        const isH2 = seen.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
        if (isH2 && n < HTTP2_PREFACE.length) return; // need more bytes to decide
        socket.removeListener('data', onData);
        if (isH2) {
          // The bytes read so far (the preface) go to the HTTP/2 connection with the socket.
          // The certificate's name reaches the handlers as a request header whose name no
          // client can know (see caller.ts).
          const added = certName !== undefined ? { name: CERT_NAME_HEADER, value: certName } : undefined;
          front.serve(socket, seen, added);
          return;
        }
        socket.pause();
        socket.unshift(seen);
        http.emit('connection', socket);
        socket.resume(); // the HTTP/1 parser reads through 'data' events
      };
      socket.on('data', onData);
      socket.on('error', () => socket.destroy());
    };
    const sockets: NetServer[] = [];
    const listeners: ClientListener[] = [];
    const modes = new Map<string, { plain: boolean; secure: boolean }>();
    const addressOf = (u: URL): string => (u.protocol.startsWith('unix') ? `unix:${u.host}${u.pathname}` : `${u.hostname}:${u.port || 2379}`);
    for (const url of cfg.listenClientUrls) {
      const u = new URL(url);
      const secure = u.protocol === 'https:' || u.protocol === 'unixs:';
      if (secure && tlsConfig === undefined) throw new Error(`--listen-client-urls ${url}: an https URL needs --cert-file and --key-file, or --auto-tls`);
      const m = modes.get(addressOf(u)) ?? { plain: false, secure: false };
      if (secure) m.secure = true;
      else m.plain = true;
      modes.set(addressOf(u), m);
    }
    const bound = new Set<string>();
    for (const url of cfg.listenClientUrls) {
      const u = new URL(url);
      const address = addressOf(u);
      if (bound.has(address)) {
        listeners.push({ url, port: listeners.find((l) => addressOf(new URL(l.url)) === address)?.port ?? 0 });
        continue;
      }
      bound.add(address);
      const mode = modes.get(address)!;
      const server = createNetServer((socket) => route(socket, mode));
      const port = await new Promise<number>((resolve, reject) => {
        server.once('error', (e) => reject(new Error(`cannot listen on ${url}: ${e.message}`)));
        if (u.protocol === 'unix:' || u.protocol === 'unixs:') {
          const path = `${u.host}${u.pathname}`;
          unlink(path).catch(() => undefined).then(() => server.listen(path, () => resolve(0)));
        } else {
          server.listen({ host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(u.port || 2379) }, () => {
            const addr = server.address();
            resolve(typeof addr === 'object' && addr ? addr.port : 0);
          });
        }
      });
      sockets.push(server);
      listeners.push({ url, port });
    }
    return new ApiServer(grpc, http, sockets, listeners, front);
  }

  /**
   * Stops accepting connections and calls, ends the watch and keep-alive streams
   * (Unavailable, so clients move to another member, as etcd's closing streams make them),
   * waits for running calls (bounded), then closes.
   */
  async stop(graceMs = 5000): Promise<void> {
    for (const s of this.sockets) s.close();
    this.front.endStreams(Status.UNAVAILABLE, 'etcdserver: server stopped');
    this.front.close(false);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.front.close(true);
        this.grpc.forceShutdown();
        resolve();
      }, graceMs);
      this.grpc.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.http.close();
    this.http.closeAllConnections();
  }
}
