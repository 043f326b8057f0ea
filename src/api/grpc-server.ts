import { Server, ServerCredentials } from '@grpc/grpc-js';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { unlink } from 'node:fs/promises';
import type { Logger } from 'pino';
import { GRPC_OVERHEAD_BYTES } from '../server/config';
import { CairnServer } from '../server/server';
import { clusterImplementation, clusterService } from './cluster';
import { HTTP2_PREFACE, sniffHttp2 } from './authority';
import { httpHandler } from './http';
import { maintenanceImplementation, maintenanceService } from './maintenance';
import { instrument } from './instrument';
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
    grpc.addService(kvService, instrument(kvService, kvImplementation(member, errors), metrics));
    grpc.addService(watchService, instrument(watchService, watchImplementation(member, log), metrics));
    grpc.addService(leaseService, instrument(leaseService, leaseImplementation(member, errors), metrics));
    grpc.addService(maintenanceService, instrument(maintenanceService, maintenanceImplementation(member, errors, log), metrics));
    grpc.addService(clusterService, instrument(clusterService, clusterImplementation(member, errors), metrics));
    grpc.addService(lockService, instrument(lockService, lockImplementation(member, errors), metrics));
    grpc.addService(electionService, instrument(electionService, electionImplementation(member, errors), metrics));
    const injector = grpc.createConnectionInjector(ServerCredentials.createInsecure());
    const http = createHttpServer(httpHandler(member, metrics, log));
    const route = (socket: Socket): void => {
      socket.setNoDelay(true);
      let seen: Buffer = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
        const n = Math.min(seen.length, HTTP2_PREFACE.length);
        const isH2 = seen.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
        if (isH2 && n < HTTP2_PREFACE.length) return; // need more bytes to decide
        socket.removeListener('data', onData);
        if (isH2) {
          // http2 takes unshifted bytes from the paused socket itself (see authority.ts).
          sniffHttp2(socket, seen, (conn) => injector.injectConnection(conn as Socket));
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
    for (const url of cfg.listenClientUrls) {
      const u = new URL(url);
      if (u.protocol === 'https:' || u.protocol === 'unixs:') throw new Error(`--listen-client-urls ${url}: TLS is not implemented in cairn yet`);
      const server = createNetServer(route);
      const port = await new Promise<number>((resolve, reject) => {
        server.once('error', (e) => reject(new Error(`cannot listen on ${url}: ${e.message}`)));
        if (u.protocol === 'unix:') {
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
    return new ApiServer(grpc, http, sockets, listeners);
  }

  /** Stops accepting connections and calls, waits for running ones (bounded), then closes. */
  async stop(graceMs = 5000): Promise<void> {
    for (const s of this.sockets) s.close();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
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
