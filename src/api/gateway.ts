import { EventEmitter } from 'node:events';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { Metadata, type ServiceError, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { etcdserverpb } from '../gen/proto';
import { GRPC_OVERHEAD_BYTES } from '../server/config';
import { toBigInt } from '../server/convert';
import { Errors } from '../server/errors';
import { CairnServer } from '../server/server';
import { authImplementation, authService } from './auth';
import { CERT_NAME_HEADER, certNameOf, type CallLike } from './caller';
import { clusterImplementation, clusterService } from './cluster';
import { JsonSyntaxError, JsonValueStream, parseFirstValue, type JsonValue } from './gateway/json';
import { JsonMappingError, loadSchema, requestFromJson, responseToJson } from './gateway/protojson';
import { instrument } from './instrument';
import { kvImplementation, kvService } from './kv';
import { leaseImplementation, leaseService } from './lease';
import { maintenanceImplementation, maintenanceService } from './maintenance';
import type { Metrics } from './metrics';
import { ErrorMapper } from './status';
import { watchImplementation, watchService } from './watch';

// etcd's JSON gateway (grpc-gateway, as etcd 3.4 serves it under /v3/ and the deprecated
// /v3beta/): POST a request as protobuf JSON, get the response as protobuf JSON. Like
// grpc-gateway, the gateway calls the same service implementations the gRPC server runs, so
// validation, headers and errors are the gRPC path's. Streams (watch, lease keep-alive,
// snapshot) answer with newline-delimited {"result": ...} objects.
//
// What etcd 3.4 answers was checked with curl against a real etcd 3.4: field names as in the
// .proto files, fields at their default left out, 64-bit integers as strings; errors as
// {"error","message","code"} with grpc-gateway's HTTP status for the gRPC code; unknown paths
// 404 "Not Found"; a body that is not JSON 400 (500, code 2, for the first message of a
// stream); unknown JSON fields ignored; an empty body an empty request.

const CORS_HEADERS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'POST, GET, OPTIONS, PUT, DELETE',
  'Access-Control-Allow-Headers': 'accept, content-type, authorization',
};
const RESPONSE_HEADERS = { ...CORS_HEADERS, 'Content-Type': 'application/json', 'Grpc-Metadata-Content-Type': 'application/grpc' };

/** grpc-gateway v1's HTTPStatusFromCode. */
const HTTP_STATUS: Record<number, number> = {
  0: 200, 1: 408, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 412, 10: 409,
  11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401,
};
const httpStatusOf = (code: number): number => HTTP_STATUS[code] ?? 500;

const CODE_UNKNOWN = 2;
const CODE_INVALID_ARGUMENT = 3;
const CODE_RESOURCE_EXHAUSTED = 8;
const CODE_INTERNAL = 13;

interface GrpcStatus {
  code: number;
  message: string;
}

type UnaryHandler = (call: { request: unknown } & CallLike, cb: (err: Partial<ServiceError> | null, res?: unknown) => void) => void;
type StreamHandler = (call: unknown) => void;

interface UnaryRoute {
  kind: 'unary';
  request: string;
  response: string;
  run: (request: unknown, from: IncomingMessage) => Promise<unknown>;
  /** Adjust the JSON to what etcd's gateway answers for this call. */
  shape?: (json: Record<string, unknown>) => void;
}
interface StreamRoute {
  kind: 'watch' | 'keepalive' | 'snapshot';
}
interface MissingRoute {
  kind: 'missing';
  what: string;
}
type Route = UnaryRoute | StreamRoute | MissingRoute;

/** etcd 3.4 leaves the header out of these responses (its maintenance server does not set one). */
const noHeader = (json: Record<string, unknown>): void => {
  delete json.header;
};

export type GatewayHandler = (req: IncomingMessage, res: ServerResponse, path: string) => void;

/** True for the paths the gateway answers (everything under /v3/ and /v3beta/). */
export function isGatewayPath(path: string): boolean {
  return path.startsWith('/v3/') || path.startsWith('/v3beta/');
}

export function gatewayHandler(member: CairnServer, metrics: Metrics, log: Logger): GatewayHandler {
  loadSchema();
  const errors = new ErrorMapper(log);
  const kv = instrument(kvService, kvImplementation(member, errors), metrics);
  const lease = instrument(leaseService, leaseImplementation(member, errors), metrics);
  const maintenance = instrument(maintenanceService, maintenanceImplementation(member, errors, log), metrics);
  const cluster = instrument(clusterService, clusterImplementation(member, errors), metrics);
  const auth = instrument(authService, authImplementation(member, errors), metrics);
  const watch = instrument(watchService, watchImplementation(member, log), metrics).Watch as unknown as StreamHandler;
  const snapshot = maintenance.Snapshot as unknown as StreamHandler;
  const maxMessage = member.config.maxRequestBytes + GRPC_OVERHEAD_BYTES;
  // A JSON body may be larger than its message (base64, field names): read at most this much.
  const maxBody = 4 * maxMessage;

  const via = (impl: UntypedServiceImplementation, name: string) => {
    const h = impl[name] as unknown as UnaryHandler;
    return (request: unknown, from: IncomingMessage): Promise<unknown> =>
      new Promise((resolve, reject) => {
        try {
          h({ request, ...callIdentity(from) }, (err, res) => (err ? reject(err) : resolve(res)));
        } catch (e) {
          reject(errors.toStatus(e));
        }
      });
  };
  const unary = (impl: UntypedServiceImplementation, name: string, request: string, response: string, shape?: UnaryRoute['shape']): UnaryRoute => ({
    kind: 'unary',
    request,
    response,
    run: via(impl, name),
    shape,
  });
  const leaseRevoke = unary(lease, 'LeaseRevoke', 'LeaseRevokeRequest', 'LeaseRevokeResponse');
  const leaseTtl = unary(lease, 'LeaseTimeToLive', 'LeaseTimeToLiveRequest', 'LeaseTimeToLiveResponse');
  const leaseLeases = unary(lease, 'LeaseLeases', 'LeaseLeasesRequest', 'LeaseLeasesResponse');
  const routes = new Map<string, Route>([
    ['kv/range', unary(kv, 'Range', 'RangeRequest', 'RangeResponse')],
    ['kv/put', unary(kv, 'Put', 'PutRequest', 'PutResponse')],
    ['kv/deleterange', unary(kv, 'DeleteRange', 'DeleteRangeRequest', 'DeleteRangeResponse')],
    ['kv/txn', unary(kv, 'Txn', 'TxnRequest', 'TxnResponse')],
    ['kv/compaction', unary(kv, 'Compact', 'CompactionRequest', 'CompactionResponse')],
    ['watch', { kind: 'watch' }],
    ['lease/grant', unary(lease, 'LeaseGrant', 'LeaseGrantRequest', 'LeaseGrantResponse')],
    ['lease/revoke', leaseRevoke],
    ['kv/lease/revoke', leaseRevoke],
    ['lease/timetolive', leaseTtl],
    ['kv/lease/timetolive', leaseTtl],
    ['lease/leases', leaseLeases],
    ['kv/lease/leases', leaseLeases],
    ['lease/keepalive', { kind: 'keepalive' }],
    ['maintenance/alarm', unary(maintenance, 'Alarm', 'AlarmRequest', 'AlarmResponse', noHeader)],
    ['maintenance/status', unary(maintenance, 'Status', 'StatusRequest', 'StatusResponse')],
    ['maintenance/defragment', unary(maintenance, 'Defragment', 'DefragmentRequest', 'DefragmentResponse', noHeader)],
    ['maintenance/hash', unary(maintenance, 'Hash', 'HashRequest', 'HashResponse')],
    // Not in etcd 3.4's gateway (its HashKV is bound to .../hash, which Hash answers); served
    // here because nothing else reaches HashKV over HTTP.
    ['maintenance/hashkv', unary(maintenance, 'HashKV', 'HashKVRequest', 'HashKVResponse')],
    ['maintenance/snapshot', { kind: 'snapshot' }],
    ['maintenance/transfer-leadership', unary(maintenance, 'MoveLeader', 'MoveLeaderRequest', 'MoveLeaderResponse', noHeader)],
    ['cluster/member/add', unary(cluster, 'MemberAdd', 'MemberAddRequest', 'MemberAddResponse')],
    ['cluster/member/remove', unary(cluster, 'MemberRemove', 'MemberRemoveRequest', 'MemberRemoveResponse')],
    ['cluster/member/update', unary(cluster, 'MemberUpdate', 'MemberUpdateRequest', 'MemberUpdateResponse')],
    ['cluster/member/promote', unary(cluster, 'MemberPromote', 'MemberPromoteRequest', 'MemberPromoteResponse')],
    [
      'cluster/member/list',
      // etcd's cluster service header carries no revision.
      unary(cluster, 'MemberList', 'MemberListRequest', 'MemberListResponse', (json) => {
        const h = json.header as Record<string, unknown> | undefined;
        if (h) delete h.revision;
      }),
    ],
  ]);
  // The rest of etcd 3.4's gateway: services cairn does not serve yet answer Unimplemented.
  const authRoutes: Array<[string, string, string]> = [
    ['auth/enable', 'AuthEnable', 'AuthEnable'],
    ['auth/disable', 'AuthDisable', 'AuthDisable'],
    ['auth/authenticate', 'Authenticate', 'Authenticate'],
    ['auth/user/add', 'UserAdd', 'AuthUserAdd'],
    ['auth/user/get', 'UserGet', 'AuthUserGet'],
    ['auth/user/list', 'UserList', 'AuthUserList'],
    ['auth/user/delete', 'UserDelete', 'AuthUserDelete'],
    ['auth/user/changepw', 'UserChangePassword', 'AuthUserChangePassword'],
    ['auth/user/grant', 'UserGrantRole', 'AuthUserGrantRole'],
    ['auth/user/revoke', 'UserRevokeRole', 'AuthUserRevokeRole'],
    ['auth/role/add', 'RoleAdd', 'AuthRoleAdd'],
    ['auth/role/get', 'RoleGet', 'AuthRoleGet'],
    ['auth/role/list', 'RoleList', 'AuthRoleList'],
    ['auth/role/delete', 'RoleDelete', 'AuthRoleDelete'],
    ['auth/role/grant', 'RoleGrantPermission', 'AuthRoleGrantPermission'],
    ['auth/role/revoke', 'RoleRevokePermission', 'AuthRoleRevokePermission'],
  ];
  for (const [path, rpc, type] of authRoutes) routes.set(path, unary(auth, rpc, `${type}Request`, `${type}Response`));
  const missing: Array<[string, string[]]> = [
    ['the election API', ['election/campaign', 'election/proclaim', 'election/leader', 'election/observe', 'election/resign']],
    ['the lock API', ['lock/lock', 'lock/unlock']],
  ];
  for (const [what, paths] of missing) for (const p of paths) routes.set(p, { kind: 'missing', what });

  // ---- responses ---------------------------------------------------------------------

  const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = RESPONSE_HEADERS): void => {
    const text = JSON.stringify(body);
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { ...headers, 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  /** grpc-gateway's error body for a failed call (before any streamed message). */
  const sendError = (res: ServerResponse, s: GrpcStatus): void => {
    sendJson(res, httpStatusOf(s.code), { error: s.message, message: s.message, code: s.code }, { ...CORS_HEADERS, 'Content-Type': 'application/json' });
  };
  const sendText = (res: ServerResponse, status: number, text: string): void => {
    res.writeHead(status, { ...CORS_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  const statusOf = (e: unknown): GrpcStatus => {
    if (e instanceof JsonSyntaxError || e instanceof JsonMappingError) return { code: CODE_INVALID_ARGUMENT, message: e.message };
    if (typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'number' && 'details' in e) {
      const s = e as Partial<ServiceError>;
      return { code: s.code ?? CODE_UNKNOWN, message: s.details ?? '' };
    }
    const s = errors.toStatus(e);
    return { code: s.code ?? CODE_INTERNAL, message: s.details ?? String(e) };
  };
  const tooLarge = (size: number): GrpcStatus => ({
    code: CODE_RESOURCE_EXHAUSTED,
    message: `grpc: received message larger than max (${size} vs. ${maxMessage})`,
  });

  /** Reads a whole body (at most maxBody bytes are kept; the rest is drained). */
  const readBody = (req: IncomingMessage): Promise<{ text: string; size: number }> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= maxBody) chunks.push(c);
      });
      req.on('end', () => resolve({ text: size <= maxBody ? Buffer.concat(chunks).toString('utf8') : '', size }));
      req.on('error', reject);
    });

  /** Reads the single request of a unary or server-streaming call; undefined after answering an error. */
  const readRequest = async <T>(req: IncomingMessage, res: ServerResponse, type: string): Promise<T | undefined> => {
    let body: { text: string; size: number };
    try {
      body = await readBody(req);
    } catch {
      res.destroy();
      return undefined;
    }
    if (body.size > maxBody) {
      sendError(res, tooLarge(body.size));
      return undefined;
    }
    try {
      const { message, size } = requestFromJson<T>(type, parseFirstValue(body.text));
      if (size > maxMessage) {
        sendError(res, tooLarge(size));
        return undefined;
      }
      return message;
    } catch (e) {
      sendError(res, e instanceof JsonSyntaxError || e instanceof JsonMappingError ? statusOf(e) : { code: CODE_INVALID_ARGUMENT, message: String(e) });
      return undefined;
    }
  };

  const serveUnary = async (req: IncomingMessage, res: ServerResponse, route: UnaryRoute): Promise<void> => {
    const request = await readRequest<unknown>(req, res, route.request);
    if (request === undefined) return;
    let response: unknown;
    try {
      response = await route.run(request, req);
    } catch (e) {
      sendError(res, statusOf(e));
      return;
    }
    try {
      const json = responseToJson(route.response, response);
      route.shape?.(json);
      sendJson(res, 200, json);
    } catch (e) {
      log.error({ err: e, route: route.request }, 'gateway: cannot render a response as JSON');
      sendError(res, { code: CODE_INTERNAL, message: `cairn: internal error: ${e instanceof Error ? e.message : String(e)}` });
    }
  };

  // ---- streams -----------------------------------------------------------------------

  /**
   * Reads a request stream from the body (JSON values one after another) as grpc-gateway
   * does: the first message is read before answering (a bad one fails the call with code
   * Unknown, HTTP 500); a later bad one ends the reading but not the response stream.
   */
  const readRequestStream = (
    req: IncomingMessage,
    res: ServerResponse,
    type: string,
    open: () => { onRequest(m: unknown): void; onEnd(): void },
  ): void => {
    const values = new JsonValueStream();
    const decoder = new StringDecoder('utf8');
    let session: { onRequest(m: unknown): void; onEnd(): void } | undefined;
    let stopped = false;
    let failed = false;
    const fail = (s: GrpcStatus): void => {
      stopped = true;
      if (session !== undefined) return; // after the first message: stop reading, keep the stream
      failed = true;
      sendError(res, { code: s.code === CODE_INVALID_ARGUMENT ? CODE_UNKNOWN : s.code, message: s.message });
    };
    const pump = (): void => {
      while (!stopped) {
        let message: unknown;
        try {
          const v: JsonValue | undefined = values.next();
          if (v === undefined) return;
          const r = requestFromJson<unknown>(type, v);
          if (r.size > maxMessage) return fail(tooLarge(r.size));
          message = r.message;
        } catch (e) {
          return fail(statusOf(e));
        }
        if (session === undefined) session = open();
        session.onRequest(message);
      }
    };
    req.on('data', (chunk: Buffer) => {
      if (stopped) return;
      values.push(decoder.write(chunk));
      pump();
      if (!stopped && values.buffered > maxBody) fail(tooLarge(values.buffered));
    });
    req.on('end', () => {
      if (!stopped) {
        values.push(decoder.end());
        values.end();
        pump();
      }
      if (failed) return;
      if (session === undefined) session = open();
      session.onEnd();
    });
    req.on('error', () => undefined);
  };

  const serveWatch = (req: IncomingMessage, res: ServerResponse): void => {
    readRequestStream(req, res, 'WatchRequest', () => {
      const call = new StreamCall(res, 'WatchResponse', log, req);
      watch(call);
      // The body's end is grpc-gateway's CloseSend: etcd keeps the watch stream open until
      // the client goes away, so it is not passed on as 'end'.
      return { onRequest: (m) => call.emit('data', m), onEnd: () => undefined };
    });
  };

  const serveKeepAlive = (req: IncomingMessage, res: ServerResponse): void => {
    readRequestStream(req, res, 'LeaseKeepAliveRequest', () => {
      const call = new StreamCall(res, 'LeaseKeepAliveResponse', log, req);
      // One answer per request, in order; the stream ends once the body has and all are answered.
      let previous: Promise<void> = Promise.resolve();
      return {
        onRequest: (m) => {
          const r = m as etcdserverpb.LeaseKeepAliveRequest;
          const renewed = member.leaseKeepAlive(toBigInt(r.ID));
          renewed.catch(() => undefined);
          previous = previous.then(() =>
            renewed.then(
              (ttl) => {
                call.write({ header: member.header(), ID: r.ID, TTL: ttl });
              },
              (e) => call.fail(statusOf(errors.toStatus(e))),
            ),
          );
        },
        onEnd: () => {
          void previous.then(() => call.end());
        },
      };
    });
  };

  const serveSnapshot = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const request = await readRequest<etcdserverpb.SnapshotRequest>(req, res, 'SnapshotRequest');
    if (request === undefined) return;
    const call = new StreamCall(res, 'SnapshotResponse', log, req);
    call.request = request;
    snapshot(call);
  };

  return (req, res, path) => {
    const rest = path.slice(path.indexOf('/', 1) + 1);
    const route = routes.get(rest);
    if (req.method === 'OPTIONS') {
      res.writeHead(200, { ...CORS_HEADERS, 'Content-Length': 0 });
      res.end();
      return;
    }
    if (route === undefined) return sendText(res, 404, 'Not Found\n');
    if (req.method !== 'POST') return sendText(res, 405, 'Method Not Allowed\n');
    const failed = (e: unknown): void => {
      log.error({ err: e, path }, 'gateway request failed');
      if (!res.headersSent) sendError(res, { code: CODE_INTERNAL, message: `cairn: internal error: ${e instanceof Error ? e.message : String(e)}` });
      else res.destroy();
    };
    try {
      switch (route.kind) {
        case 'unary':
          serveUnary(req, res, route).catch(failed);
          return;
        case 'watch':
          return serveWatch(req, res);
        case 'keepalive':
          return serveKeepAlive(req, res);
        case 'snapshot':
          serveSnapshot(req, res).catch(failed);
          return;
        case 'missing': {
          req.resume();
          const e = Errors.notImplemented(route.what);
          req.on('end', () => sendError(res, { code: e.code, message: e.message }));
          return;
        }
      }
    } catch (e) {
      failed(e);
    }
  };
}

/**
 * The gateway's side of a streamed call, shaped like the grpc-js call object the service
 * implementations drive (write, end, 'data' / 'drain' / 'cancelled' events, `cancelled`):
 * each message goes out as one line `{"result": <message as JSON>}`. The status line and
 * headers go out with the first message, as grpc-gateway sends them.
 */
class StreamCall extends EventEmitter {
  cancelled = false;
  request: unknown;
  readonly metadata: Metadata;
  private started = false;
  private finished = false;

  constructor(private readonly res: ServerResponse, private readonly responseType: string, private readonly log: Logger, from: IncomingMessage) {
    super();
    ({ metadata: this.metadata } = callIdentity(from));
    res.on('drain', () => this.emit('drain'));
    res.on('close', () => {
      if (this.finished) return;
      this.finished = true;
      this.cancelled = true;
      this.emit('cancelled');
    });
    // A service reports a failed stream by emitting 'error' with a gRPC status.
    this.on('error', (e: Partial<ServiceError>) => this.fail({ code: e.code ?? CODE_UNKNOWN, message: e.details ?? e.message ?? '' }));
  }

  private start(status = 200): void {
    if (this.started) return;
    this.started = true;
    this.res.writeHead(status, RESPONSE_HEADERS);
  }

  write(message: unknown): boolean {
    if (this.finished) return true;
    let line: string;
    try {
      line = JSON.stringify({ result: responseToJson(this.responseType, message) }) + '\n';
    } catch (e) {
      this.log.error({ err: e, type: this.responseType }, 'gateway: cannot render a streamed message as JSON');
      return true;
    }
    this.start();
    return this.res.write(line);
  }

  end(): void {
    if (this.finished) return;
    this.finished = true;
    this.start();
    this.res.end();
    this.emit('finish');
  }

  /** grpc-gateway's streamed error: {"error": {grpc_code, http_code, message, http_status}}. */
  fail(s: GrpcStatus): void {
    if (this.finished) return;
    const http = httpStatusOf(s.code);
    this.start(http);
    this.res.write(JSON.stringify({ error: { grpc_code: s.code, http_code: http, message: s.message, http_status: STATUS_CODES[http] ?? '' } }));
    this.finished = true;
    this.res.end();
    this.emit('finish');
  }
}

/**
 * What a gateway request says of its caller, in the form the gRPC handlers read: the token
 * from the Authorization (or Token) header, and the client certificate's name.
 */
function callIdentity(req: IncomingMessage): { metadata: Metadata } {
  const metadata = new Metadata();
  const token = req.headers.authorization ?? req.headers.token;
  if (typeof token === 'string' && token !== '') metadata.set('authorization', token);
  const cn = certNameOf(req.socket);
  if (cn !== undefined) metadata.set(CERT_NAME_HEADER, cn);
  return { metadata };
}
