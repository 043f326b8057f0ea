import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { GRPC_OVERHEAD_BYTES } from '../server/config';
import { CairnServer } from '../server/server';
import { kvImplementation, kvService } from './kv';
import { leaseImplementation, leaseService } from './lease';
import { watchImplementation, watchService } from './watch';
import { ErrorMapper } from './status';

// The client-facing gRPC server on every --listen-client-urls address.

export interface ClientListener {
  url: string;
  /** The port actually bound (differs from the URL's when it asked for port 0). */
  port: number;
}

export class ApiServer {
  private constructor(private readonly grpc: Server, readonly listeners: ClientListener[]) {}

  static async start(member: CairnServer, log: Logger): Promise<ApiServer> {
    const cfg = member.config;
    const grpc = new Server({
      'grpc.max_receive_message_length': cfg.maxRequestBytes + GRPC_OVERHEAD_BYTES,
      'grpc.max_send_message_length': 2 ** 31 - 1,
      'grpc.max_concurrent_streams': 2 ** 31 - 1,
    });
    const errors = new ErrorMapper(log);
    grpc.addService(kvService, kvImplementation(member, errors));
    grpc.addService(watchService, watchImplementation(member, log));
    grpc.addService(leaseService, leaseImplementation(member, errors));
    const listeners: ClientListener[] = [];
    for (const url of cfg.listenClientUrls) {
      const u = new URL(url);
      if (u.protocol === 'https:' || u.protocol === 'unixs:') throw new Error(`--listen-client-urls ${url}: TLS is not implemented in cairn yet`);
      const target = u.protocol === 'unix:' ? `unix:${u.host}${u.pathname}` : `${u.hostname.replace(/^\[(.*)\]$/, '$1')}:${u.port || '2379'}`;
      const bindTarget = target.includes(':') && !target.startsWith('unix:') && u.hostname.startsWith('[') ? `[${target.slice(0, target.lastIndexOf(':'))}]${target.slice(target.lastIndexOf(':'))}` : target;
      const port = await new Promise<number>((resolve, reject) =>
        grpc.bindAsync(bindTarget, ServerCredentials.createInsecure(), (err, p) => (err ? reject(new Error(`cannot listen on ${url}: ${err.message}`)) : resolve(p))),
      );
      listeners.push({ url, port });
    }
    return new ApiServer(grpc, listeners);
  }

  /** Stops accepting calls and waits for running ones (bounded), then closes connections. */
  async stop(graceMs = 5000): Promise<void> {
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
  }
}
