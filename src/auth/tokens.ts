import { randomBytes, createPrivateKey, createPublicKey, createSecretKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import jwt from 'jsonwebtoken';

// The two token kinds of etcd's --auth-token.
//
// simple: a random string handed out by Authenticate and learned by every member when the
// Authenticate entry is applied; kept in memory only, dropped after --auth-token-ttl
// seconds without use, when its user is deleted or changes password, and at restart
// (clients authenticate again, as with etcd).
//
// jwt: a signed {username, revision, exp}; any member with the public key checks it with no
// shared state. Its revision is the auth revision at issue: once users or roles change,
// requests carrying it fail with "auth: revision in header is old" and clients
// authenticate again.

export interface TokenInfo {
  username: string;
  /** The auth revision the token vouches for; undefined: the current one (simple tokens). */
  revision?: number;
}

export interface TokenProvider {
  readonly kind: 'simple' | 'jwt';
  /** Resolves a token presented by a client; undefined when it is unknown, expired or forged. */
  info(token: string): TokenInfo | undefined;
  invalidateUser(username: string): void;
  clear(): void;
  stop(): void;
}

const SIMPLE_TOKEN_LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** A new simple token: 16 random letters, a dot and a sequence number, as etcd's look. */
export function newSimpleToken(seq: number): string {
  const bytes = randomBytes(16);
  let s = '';
  for (const b of bytes) s += SIMPLE_TOKEN_LETTERS[b % SIMPLE_TOKEN_LETTERS.length];
  return `${s}.${seq}`;
}

export class SimpleTokens implements TokenProvider {
  readonly kind = 'simple' as const;
  private readonly tokens = new Map<string, { username: string; expiresAt: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly ttlMs: number, private readonly now: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(ttlMs, 10_000));
    this.sweeper.unref();
  }

  add(token: string, username: string): void {
    this.tokens.set(token, { username, expiresAt: this.now() + this.ttlMs });
  }

  info(token: string): TokenInfo | undefined {
    const t = this.tokens.get(token);
    if (t === undefined) return undefined;
    const now = this.now();
    if (t.expiresAt <= now) {
      this.tokens.delete(token);
      return undefined;
    }
    t.expiresAt = now + this.ttlMs; // etcd's keeper: a token in use stays alive
    return { username: t.username };
  }

  invalidateUser(username: string): void {
    for (const [k, t] of this.tokens) if (t.username === username) this.tokens.delete(k);
  }

  clear(): void {
    this.tokens.clear();
  }

  stop(): void {
    clearInterval(this.sweeper);
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, t] of this.tokens) if (t.expiresAt <= now) this.tokens.delete(k);
  }
}

export interface JwtOptions {
  signMethod: jwt.Algorithm;
  publicKey: KeyObject;
  /** Absent: this member only verifies tokens (etcd allows a verify-only member). */
  privateKey?: KeyObject;
  ttlMs: number;
}

export class JwtTokens implements TokenProvider {
  readonly kind = 'jwt' as const;

  constructor(private readonly opts: JwtOptions) {}

  get canSign(): boolean {
    return this.opts.privateKey !== undefined;
  }

  sign(username: string, revision: number): string {
    if (this.opts.privateKey === undefined) throw new Error('this member has no JWT private key (priv-key) and cannot issue tokens');
    return jwt.sign({ username, revision }, this.opts.privateKey, {
      algorithm: this.opts.signMethod,
      expiresIn: Math.max(1, Math.round(this.opts.ttlMs / 1000)),
    });
  }

  info(token: string): TokenInfo | undefined {
    try {
      const claims = jwt.verify(token, this.opts.publicKey, { algorithms: [this.opts.signMethod] });
      if (typeof claims !== 'object' || claims === null) return undefined;
      const { username, revision } = claims as { username?: unknown; revision?: unknown };
      if (typeof username !== 'string' || typeof revision !== 'number') return undefined;
      return { username, revision };
    } catch {
      return undefined;
    }
  }

  invalidateUser(): void {
    // Nothing to drop: the revision in every token issued before the change is now old.
  }

  clear(): void {}

  stop(): void {}
}

const JWT_METHODS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512'];

/**
 * Parses --auth-token: "simple", or "jwt,pub-key=PATH,priv-key=PATH,sign-method=RS256,ttl=5m"
 * (etcd's form). The public key may be a PEM public key or a certificate; HS* methods take
 * the secret from priv-key. Throws with the reason on anything else.
 */
export function parseAuthToken(spec: string, simpleTtlMs: number, parseDuration: (s: string) => number): { kind: 'simple'; ttlMs: number } | { kind: 'jwt'; options: JwtOptions } {
  const [kind, ...rest] = spec.split(',');
  if (kind === 'simple' || kind === '') {
    if (rest.length > 0) throw new Error(`--auth-token ${spec}: simple tokens take no options`);
    return { kind: 'simple', ttlMs: simpleTtlMs };
  }
  if (kind !== 'jwt') throw new Error(`--auth-token ${spec}: unknown token type "${kind}" (simple or jwt)`);
  const opts = new Map<string, string>();
  for (const kv of rest) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`--auth-token: "${kv}" is not key=value`);
    opts.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  for (const k of opts.keys()) if (!['pub-key', 'priv-key', 'sign-method', 'ttl'].includes(k)) throw new Error(`--auth-token: unknown jwt option "${k}"`);
  const method = opts.get('sign-method') ?? '';
  if (!JWT_METHODS.includes(method)) throw new Error(`--auth-token: sign-method "${method}" is not one of ${JWT_METHODS.join(', ')}`);
  const ttlMs = opts.has('ttl') ? parseDuration(opts.get('ttl')!) : 5 * 60_000;
  if (method.startsWith('HS')) {
    const secretPath = opts.get('priv-key');
    if (!secretPath) throw new Error('--auth-token: an HS* sign-method needs priv-key (the shared secret)');
    const secret = createSecretKey(readFileSync(secretPath));
    return { kind: 'jwt', options: { signMethod: method as jwt.Algorithm, publicKey: secret, privateKey: secret, ttlMs } };
  }
  const pubPath = opts.get('pub-key');
  if (!pubPath) throw new Error('--auth-token: jwt needs pub-key');
  const pubPem = readFileSync(pubPath, 'utf8');
  const publicKey = pubPem.includes('CERTIFICATE') ? new X509Certificate(pubPem).publicKey : createPublicKey(pubPem);
  const privPath = opts.get('priv-key');
  const privateKey = privPath ? createPrivateKey(readFileSync(privPath, 'utf8')) : undefined;
  return { kind: 'jwt', options: { signMethod: method as jwt.Algorithm, publicKey, privateKey, ttlMs } };
}
