import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { CairnServer } from '../server/server';
import { CAIRN_VERSION, ETCD_API_VERSION } from '../version';
import { gatewayHandler, isGatewayPath } from './gateway';
import type { Metrics } from './metrics';

// The HTTP endpoints served beside gRPC on the client port: /health and /version with
// etcd's JSON shapes, and /metrics; etcd's JSON gateway under /v3/ and /v3beta/ (gateway.ts).

export function httpHandler(member: CairnServer, metrics: Metrics, log: Logger) {
  const gateway = gatewayHandler(member, metrics, log);
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (isGatewayPath(path)) return gateway(req, res, path);
    const json = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };
    switch (path) {
      case '/health':
        if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { message: 'Method Not Allowed' });
        // A single member is always its own leader; unhealthy once it stops.
        return json(member.healthy ? 200 : 503, { health: member.healthy ? 'true' : 'false' });
      case '/version':
        return json(200, { etcdserver: ETCD_API_VERSION, etcdcluster: ETCD_API_VERSION, cairn: CAIRN_VERSION });
      case '/metrics':
        metrics.text().then(
          (text) => {
            res.writeHead(200, { 'Content-Type': metrics.registry.contentType });
            res.end(text);
          },
          (e) => {
            log.error({ err: e }, 'metrics collection failed');
            res.writeHead(500);
            res.end();
          },
        );
        return;
      default:
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('404 page not found\n');
    }
  };
}
