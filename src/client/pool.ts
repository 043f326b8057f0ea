import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { AuthMethods } from './auth';
import { AuthNotEnabledError, AuthOldRevisionError, CanceledError, InvalidAuthTokenError, ClientClosedError, DeadlineExceededError, EtcdError, NoLeaderError, RequestTimedOutError, UnavailableError, fromGrpc } from './errors';
import type { Method } from './methods';

// The connection layer: one grpc-js channel per endpoint; calls go to one pinned endpoint
// (the one that last answered) and fail over to the next on connection errors, 'no leader'
// or UNAVAILABLE. A call is sent again only when that cannot apply it twice: the method is
// idempotent (reads, etcd clientv3's "repeatable" calls), or the failure proves the
// request was never applied (no connection before send, 'etcdserver: no leader').

export interface CallOptions {
  /** Abort the call (it rejects with CanceledError). */
  signal?: AbortSignal;
  /** Overall deadline for the call including failover and retries (default: the client's requestTimeoutMs). */
  timeoutMs?: number;
}

/** Internal per-call routing options. */
export interface RouteOptions {
  /** Overrides Method.idempotent (a Txn of reads only is idempotent). */
  idempotent?: boolean;
  /** Send to this endpoint only (no failover), e.g. Maintenance.Status of one member. */
  endpoint?: string;
}

/** The connection could not be established: the request was never sent. */
export class ConnectFailedError extends UnavailableError {}

/** How long an endpoint that failed is skipped while another is available. */
const ENDPOINT_DOWN_MS = 1_000;
const RETRY_BACKOFF_MIN_MS = 25;
const RETRY_BACKOFF_MAX_MS = 500;

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1_000,
  'grpc.use_local_subchannel_pool': 1,
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
};

/** TLS for https:// endpoints (and endpoints given without a scheme when this is set). */
export interface TlsOptions {
  /** Trusted CA bundle (PEM): contents, or a file path. Default: the system's roots. */
  ca?: Buffer | string;
  /** Client certificate chain (PEM), for servers with --client-cert-auth: contents or path. */
  cert?: Buffer | string;
  /** The client certificate's private key (PEM): contents or path. */
  key?: Buffer | string;
  /** Accept any server certificate (testing only; as etcdctl's --insecure-skip-tls-verify). */
  insecureSkipVerify?: boolean;
}

/** User name and password: the client authenticates and sends the token with every call. */
export interface Credentials {
  username: string;
  password: string;
}

function pem(v: Buffer | string | undefined): Buffer | null {
  if (v === undefined) return null;
  return Buffer.isBuffer(v) ? v : fs.readFileSync(v);
}

function channelCredentials(tls: TlsOptions): grpc.ChannelCredentials {
  const verify: grpc.VerifyOptions = tls.insecureSkipVerify === true ? { rejectUnauthorized: false, checkServerIdentity: () => undefined } : {};
  return grpc.credentials.createSsl(pem(tls.ca), pem(tls.key), pem(tls.cert), verify);
}

export class Endpoint {
  readonly client: grpc.Client;
  /** host:port */
  readonly target: string;
  downUntilMs = 0;

  /** http:// is plain text, https:// TLS; without a scheme, TLS when tls options are given (as etcd's clientv3). */
  constructor(readonly url: string, tls?: TlsOptions) {
    const m = /^(https?):\/\/(.+?)\/?$/.exec(url);
    const secure = m !== null ? m[1] === 'https' : tls !== undefined && !url.startsWith('unix:');
    this.target = m !== null ? m[2] : url;
    const creds = secure ? channelCredentials(tls ?? {}) : grpc.credentials.createInsecure();
    this.client = new grpc.Client(this.target, creds, CHANNEL_OPTIONS);
  }
}

export function abortError(signal: AbortSignal): CanceledError {
  return new CanceledError(grpc.status.CANCELLED, 'context canceled', { cause: signal.reason });
}

export function deadlineError(cause?: unknown): DeadlineExceededError {
  return new DeadlineExceededError(grpc.status.DEADLINE_EXCEEDED, 'context deadline exceeded', cause === undefined ? undefined : { cause });
}

/** Resolves after ms, or rejects with CanceledError when the signal aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = (): void => {
      clearTimeout(t);
      reject(abortError(signal as AbortSignal));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** May the failed request be sent again (to this or another member)? */
export function isRetriable(err: EtcdError, idempotent: boolean): boolean {
  if (err instanceof ConnectFailedError || err instanceof NoLeaderError) return true;
  // grpc-js: the call failed while no connection existed, so nothing was sent.
  if (err.code === grpc.status.UNAVAILABLE && err.details.startsWith('No connection established')) return true;
  if (!idempotent) return false;
  return err.code === grpc.status.UNAVAILABLE || err instanceof RequestTimedOutError;
}

/** Should the member be avoided for a while after this error? */
function isEndpointFault(err: EtcdError): boolean {
  return err.code === grpc.status.UNAVAILABLE || err instanceof NoLeaderError;
}

export class Pool {
  readonly endpoints: readonly Endpoint[];
  private active = 0;
  private closed = false;

  /** The auth token sent as gRPC metadata `token` (etcd clientv3's key), once authenticated; '' when the server has auth off. */
  private token: string | null = null;
  private authenticating: Promise<void> | null = null;
  /** @internal Told when credentials were given but the server has authentication disabled (cairnctl logs it as etcdctl does). */
  onAuthNotEnabled: ((err: EtcdError) => void) | undefined;

  constructor(
    urls: readonly string[],
    readonly dialTimeoutMs: number,
    readonly requestTimeoutMs: number,
    private readonly security: { tls?: TlsOptions; credentials?: Credentials } = {},
  ) {
    if (urls.length === 0) throw new TypeError('cairn client: at least one endpoint is required');
    this.endpoints = urls.map((u) => new Endpoint(u, security.tls));
  }

  /** Metadata for a call: the auth token when there is one. */
  metadata(base = new grpc.Metadata()): grpc.Metadata {
    if (this.token !== null && this.token !== '' && base.get('token').length === 0) base.set('token', this.token);
    return base;
  }

  /** With credentials and no token yet: authenticate (one request shared by concurrent calls). */
  private async ensureToken(ep: Endpoint, deadlineMs: number, signal?: AbortSignal): Promise<void> {
    const creds = this.security.credentials;
    if (creds === undefined || this.token !== null) return;
    this.authenticating ??= this.callOnce(ep, AuthMethods.Authenticate, { name: creds.username, password: creds.password }, deadlineMs, signal, new grpc.Metadata())
      .then(
        (r) => {
          this.token = r.token ?? '';
        },
        (e: unknown) => {
          // As etcd's clientv3: credentials for a server without authentication are not an error.
          const err = fromGrpc(e);
          if (!(err instanceof AuthNotEnabledError)) throw err;
          this.token = '';
          this.onAuthNotEnabled?.(err);
        },
      )
      .finally(() => {
        this.authenticating = null;
      });
    try {
      await this.authenticating;
    } catch (e) {
      throw fromGrpc(e);
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The endpoint calls currently go to. */
  current(): Endpoint {
    return this.endpoints[this.active];
  }

  closedError(): ClientClosedError {
    return new ClientClosedError(grpc.status.CANCELLED, 'cairn client: closed');
  }

  /** Skip this endpoint for a while and move calls to the next one. */
  markDown(ep: Endpoint): void {
    ep.downUntilMs = Date.now() + ENDPOINT_DOWN_MS;
    if (this.endpoints[this.active] === ep) this.active = (this.active + 1) % this.endpoints.length;
  }

  /** A connected endpoint: the pinned one if healthy, else the next that connects. */
  async pickReady(deadlineMs: number, signal?: AbortSignal, only?: string): Promise<Endpoint> {
    let lastErr: EtcdError | undefined;
    for (;;) {
      if (signal?.aborted) throw abortError(signal);
      if (this.closed) throw this.closedError();
      const now = Date.now();
      if (now >= deadlineMs) throw lastErr ?? deadlineError();
      let ep: Endpoint;
      let failFast: boolean;
      if (only !== undefined) {
        const found = this.endpoints.find((e) => e.url === only || e.target === only);
        if (found === undefined) throw new TypeError(`cairn client: ${only} is not one of the client's endpoints`);
        ep = found;
        failFast = false;
      } else {
        const n = this.endpoints.length;
        const order = Array.from({ length: n }, (_, i) => (this.active + i) % n);
        const up = order.filter((i) => this.endpoints[i].downUntilMs <= now);
        // With every endpoint down, wait on the one that comes back first.
        const i = up.length > 0 ? up[0] : order.reduce((a, b) => (this.endpoints[b].downUntilMs < this.endpoints[a].downUntilMs ? b : a));
        ep = this.endpoints[i];
        failFast = up.length > 1;
      }
      try {
        await this.ready(ep, Math.min(deadlineMs, now + this.dialTimeoutMs), failFast, signal);
        if (only === undefined) this.active = this.endpoints.indexOf(ep);
        ep.downUntilMs = 0;
      } catch (e) {
        const err = fromGrpc(e);
        if (!(err instanceof ConnectFailedError)) throw err;
        lastErr = err;
        if (only === undefined) this.markDown(ep);
        else await sleep(Math.min(RETRY_BACKOFF_MAX_MS, Math.max(0, deadlineMs - Date.now())), signal);
        continue;
      }
      try {
        await this.ensureToken(ep, deadlineMs, signal);
      } catch (e) {
        // The member went away between connecting and authenticating: try the next one.
        const err = fromGrpc(e);
        if (only !== undefined || err.code !== grpc.status.UNAVAILABLE) throw err;
        lastErr = err;
        this.markDown(ep);
        continue;
      }
      return ep;
    }
  }

  /** Wait until the channel of ep is READY (connecting it if idle). */
  private ready(ep: Endpoint, deadlineMs: number, failFast: boolean, signal?: AbortSignal): Promise<void> {
    const ch = ep.client.getChannel();
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err?: EtcdError): void => {
        if (done) return;
        done = true;
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = (): void => finish(abortError(signal as AbortSignal));
      signal?.addEventListener('abort', onAbort, { once: true });
      const unreachable = (): ConnectFailedError =>
        new ConnectFailedError(grpc.status.UNAVAILABLE, `cairn client: cannot connect to ${ep.url}`);
      const check = (): void => {
        if (done) return;
        const st = ch.getConnectivityState(true);
        if (st === grpc.connectivityState.READY) return finish();
        if (st === grpc.connectivityState.SHUTDOWN) return finish(this.closedError());
        if (st === grpc.connectivityState.TRANSIENT_FAILURE && failFast) return finish(unreachable());
        if (Date.now() >= deadlineMs) return finish(unreachable());
        ch.watchConnectivityState(st, deadlineMs, (err) => (err ? finish(unreachable()) : check()));
      };
      check();
    });
  }

  /** One unary call with failover and safe retries within the call's deadline. */
  async unary<Req, Res>(m: Method<Req, Res>, req: Req, opts: CallOptions = {}, route: RouteOptions = {}): Promise<Res> {
    const idempotent = route.idempotent ?? m.idempotent;
    const deadlineMs = Date.now() + (opts.timeoutMs ?? this.requestTimeoutMs);
    let reauthenticated = false;
    for (let attempt = 0; ; attempt++) {
      const ep = await this.pickReady(deadlineMs, opts.signal, route.endpoint);
      try {
        return await this.callOnce(ep, m, req, deadlineMs, opts.signal);
      } catch (e) {
        const err = fromGrpc(e);
        if (opts.signal?.aborted) throw abortError(opts.signal);
        if (this.closed) throw this.closedError();
        // An expired, revoked or stale token: authenticate again, once, and resend (etcd's
        // clientv3 does the same; a request refused for either reason was not applied).
        if ((err instanceof InvalidAuthTokenError || err instanceof AuthOldRevisionError) && this.security.credentials !== undefined && !reauthenticated) {
          reauthenticated = true;
          this.token = null;
          continue;
        }
        if (route.endpoint !== undefined || !isRetriable(err, idempotent)) throw err;
        if (isEndpointFault(err)) this.markDown(ep);
        const backoffMs = Math.min(RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_MIN_MS * 2 ** attempt);
        if (Date.now() + backoffMs >= deadlineMs) throw err;
        await sleep(backoffMs, opts.signal);
      }
    }
  }

  private callOnce<Req, Res>(ep: Endpoint, m: Method<Req, Res>, req: Req, deadlineMs: number, signal?: AbortSignal, md?: grpc.Metadata): Promise<Res> {
    return new Promise((resolve, reject) => {
      const onAbort = (): void => call.cancel();
      const call = ep.client.makeUnaryRequest(m.path, m.serialize, m.deserialize, req, md ?? this.metadata(), { deadline: deadlineMs }, (err, res) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else if (res === undefined) reject(new EtcdError(grpc.status.INTERNAL, `cairn client: empty response from ${m.path}`));
        else resolve(res);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  bidi<Req, Res>(ep: Endpoint, m: Method<Req, Res>, metadata = new grpc.Metadata()): grpc.ClientDuplexStream<Req, Res> {
    return ep.client.makeBidiStreamRequest(m.path, m.serialize, m.deserialize, this.metadata(metadata), {});
  }

  serverStream<Req, Res>(ep: Endpoint, m: Method<Req, Res>, req: Req, deadlineMs?: number): grpc.ClientReadableStream<Res> {
    return ep.client.makeServerStreamRequest(m.path, m.serialize, m.deserialize, req, this.metadata(), deadlineMs === undefined ? {} : { deadline: deadlineMs });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const ep of this.endpoints) ep.client.close();
  }
}
