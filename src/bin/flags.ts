import { parseAuthToken } from '../auth/tokens';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import {
  QUOTA_BACKEND_BYTES_MAX,
  ServerConfig,
  defaultConfig,
  defaultDataDir,
} from '../server/config';

// etcd's command line: the same flag names and value syntax (Go's flag package: -flag or
// --flag, =value or a separate argument, bare booleans), every flag also from
// ETCD_<NAME_IN_CAPS>, and --config-file with etcd's YAML keys (when given, flags and
// environment are not read, as in etcd).
//
// A flag is either honoured (it changes what cairn does), accepted (the feature it tunes
// does not exist yet or has no effect on a single member: cairn says so at start), or
// refused until its feature lands (TLS: serving plaintext when TLS was asked for would be
// worse than not starting).

export class FlagError extends Error {}

type Kind = 'string' | 'bool' | 'uint' | 'urls';
type Status = 'honoured' | 'accepted' | 'refused';

interface FlagSpec {
  kind: Kind;
  status: Status;
  /** Writes the parsed value into the config (honoured flags). */
  set?: (c: ServerConfig, v: string) => void;
  /** For accepted flags: why the value has no effect yet. */
  note?: string;
}

const honoured = (kind: Kind, set: (c: ServerConfig, v: string) => void): FlagSpec => ({ kind, status: 'honoured', set });
const accepted = (kind: Kind, note: string): FlagSpec => ({ kind, status: 'accepted', note });
const refused = (kind: Kind, note: string): FlagSpec => ({ kind, status: 'refused', note });

const NOT_CLUSTERED = 'this clustering feature is not implemented yet';

export const FLAGS: Record<string, FlagSpec> = {
  name: honoured('string', (c, v) => (c.name = v)),
  'data-dir': honoured('string', (c, v) => (c.dataDir = v)),
  'wal-dir': honoured('string', (c, v) => (c.walDir = v)),
  'listen-client-urls': honoured('urls', (c, v) => (c.listenClientUrls = urls(v, 'listen-client-urls'))),
  'advertise-client-urls': honoured('urls', (c, v) => (c.advertiseClientUrls = urls(v, 'advertise-client-urls'))),
  'listen-peer-urls': honoured('urls', (c, v) => (c.listenPeerUrls = urls(v, 'listen-peer-urls'))),
  'initial-advertise-peer-urls': honoured('urls', (c, v) => (c.initialAdvertisePeerUrls = urls(v, 'initial-advertise-peer-urls'))),
  'initial-cluster': honoured('string', (c, v) => (c.initialCluster = v)),
  'initial-cluster-state': honoured('string', (c, v) => {
    if (v !== 'new' && v !== 'existing') throw new FlagError(`invalid value "${v}" for flag -initial-cluster-state: valid values are "new" or "existing"`);
    c.initialClusterState = v;
  }),
  'initial-cluster-token': honoured('string', (c, v) => (c.initialClusterToken = v)),
  'max-request-bytes': honoured('uint', (c, v) => (c.maxRequestBytes = uint(v, 'max-request-bytes'))),
  'max-txn-ops': honoured('uint', (c, v) => (c.maxTxnOps = uint(v, 'max-txn-ops'))),
  'quota-backend-bytes': honoured('uint', (c, v) => {
    const n = uint(v, 'quota-backend-bytes');
    if (n > QUOTA_BACKEND_BYTES_MAX) throw new FlagError(`invalid value "${v}" for flag -quota-backend-bytes: above the maximum ${QUOTA_BACKEND_BYTES_MAX}`);
    c.quotaBackendBytes = n;
  }),
  'snapshot-count': honoured('uint', (c, v) => (c.snapshotCount = uint(v, 'snapshot-count'))),
  'heartbeat-interval': honoured('uint', (c, v) => (c.heartbeatIntervalMs = uint(v, 'heartbeat-interval'))),
  'election-timeout': honoured('uint', (c, v) => (c.electionTimeoutMs = uint(v, 'election-timeout'))),
  'log-level': honoured('string', (c, v) => {
    const levels = ['debug', 'info', 'warn', 'error', 'panic', 'fatal'] as const;
    const level = levels.find((l) => l === v);
    if (!level) throw new FlagError(`invalid value "${v}" for flag -log-level: expected one of ${levels.join(', ')}`);
    c.logLevel = level;
  }),
  logger: honoured('string', (c, v) => {
    if (v !== 'zap' && v !== 'capnslog') throw new FlagError(`invalid value "${v}" for flag -logger: expected "zap" or "capnslog"`);
    c.logger = v;
  }),
  'log-outputs': honoured('string', (c, v) => {
    const outs = v.split(',').map((s) => s.trim());
    for (const o of outs) if (!['default', 'stderr', 'stdout'].includes(o)) throw new FlagError(`invalid value "${v}" for flag -log-outputs: cairn logs to default, stderr or stdout`);
    c.logOutputs = outs;
  }),
  debug: honoured('bool', (c, v) => {
    if (v === 'true') c.logLevel = 'debug';
  }),
  'enable-v2': accepted('bool', 'the v2 API is out of scope for cairn; only the v3 API is served'),
  'enable-pprof': accepted('bool', 'Go profiling endpoints do not exist in cairn; use node --cpu-prof'),
  'listen-metrics-urls': accepted('urls', 'metrics endpoints are not implemented yet'),
  metrics: accepted('string', 'metrics endpoints are not implemented yet'),
  'strict-reconfig-check': honoured('bool', (c, v) => (c.strictReconfigCheck = v === 'true')),
  'force-new-cluster': honoured('bool', (c, v) => (c.forceNewCluster = v === 'true')),
  'experimental-initial-corrupt-check': honoured('bool', (c, v) => (c.initialCorruptCheck = v === 'true')),
  'experimental-corrupt-check-time': accepted('string', NOT_CLUSTERED),
  'pre-vote': accepted('bool', NOT_CLUSTERED),
  'max-concurrent-streams': honoured('uint', (c, v) => (c.maxConcurrentStreams = Math.min(uint(v, 'max-concurrent-streams'), 2 ** 31 - 1))),
  'auto-compaction-mode': accepted('string', 'auto compaction is not implemented yet'),
  'auto-compaction-retention': accepted('string', 'auto compaction is not implemented yet'),
  'max-snapshots': accepted('uint', 'cairn keeps its own snapshot files'),
  'max-wals': accepted('uint', 'cairn releases WAL segments once the store is durable'),
  'backend-batch-limit': accepted('uint', 'cairn writes one LevelDB batch per apply batch'),
  'backend-batch-interval': accepted('string', 'cairn writes one LevelDB batch per apply batch'),
  'grpc-keepalive-min-time': accepted('string', 'gRPC keepalive settings are not configurable yet'),
  'grpc-keepalive-interval': accepted('string', 'gRPC keepalive settings are not configurable yet'),
  'grpc-keepalive-timeout': accepted('string', 'gRPC keepalive settings are not configurable yet'),
  cors: accepted('string', 'the HTTP gateway is not implemented yet'),
  'host-whitelist': accepted('string', 'the HTTP gateway is not implemented yet'),
  'auth-token': honoured('string', (c, v) => {
    try {
      parseAuthToken(v, 0, (d) => durationMs(d, 'auth-token'));
    } catch (e) {
      throw new FlagError(e instanceof Error ? e.message : String(e));
    }
    c.authToken = v;
  }),
  'auth-token-ttl': honoured('uint', (c, v) => (c.authTokenTtlSeconds = uint(v, 'auth-token-ttl'))),
  'bcrypt-cost': honoured('uint', (c, v) => {
    const n = uint(v, 'bcrypt-cost');
    if (n < 4 || n > 31) throw new FlagError(`invalid value "${v}" for flag -bcrypt-cost: must be between 4 and 31`);
    c.bcryptCost = n;
  }),
  'experimental-watch-progress-notify-interval': honoured('string', (c, v) => (c.watchProgressNotifyIntervalMs = durationMs(v, 'experimental-watch-progress-notify-interval'))),
  'experimental-enable-lease-checkpoint': accepted('bool', 'cairn restarts a lease from its full TTL after a restart (no checkpoints yet)'),
  'experimental-backend-bbolt-freelist-type': accepted('string', 'cairn stores data in LevelDB, not bbolt'),
  'experimental-compaction-batch-limit': accepted('uint', 'compaction deletes in batches of its own size'),
  'cert-file': honoured('string', (c, v) => (c.certFile = v)),
  'key-file': honoured('string', (c, v) => (c.keyFile = v)),
  'trusted-ca-file': honoured('string', (c, v) => (c.trustedCaFile = v)),
  'client-cert-auth': honoured('bool', (c, v) => (c.clientCertAuth = v === 'true')),
  'client-crl-file': honoured('string', (c, v) => (c.clientCrlFile = v)),
  'auto-tls': honoured('bool', (c, v) => (c.autoTls = v === 'true')),
  'cipher-suites': honoured('string', (c, v) => (c.cipherSuites = v)),
  'peer-cert-file': honoured('string', (c, v) => (c.peerCertFile = v)),
  'peer-key-file': honoured('string', (c, v) => (c.peerKeyFile = v)),
  'peer-trusted-ca-file': honoured('string', (c, v) => (c.peerTrustedCaFile = v)),
  'peer-client-cert-auth': honoured('bool', (c, v) => (c.peerClientCertAuth = v === 'true')),
  'peer-crl-file': honoured('string', (c, v) => (c.peerCrlFile = v)),
  'peer-auto-tls': honoured('bool', (c, v) => (c.peerAutoTls = v === 'true')),
  'peer-cert-allowed-cn': honoured('string', (c, v) => (c.peerCertAllowedCn = v)),
  'peer-cert-allowed-hostname': honoured('string', (c, v) => (c.peerCertAllowedHostname = v)),
};

export interface ParsedCommandLine {
  config: ServerConfig;
  /** What the operator should be told at start: flags accepted without effect. */
  notices: string[];
  action: 'serve' | 'version' | 'help';
}

/** Parses argv (without node and script) and the environment into a config. */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCommandLine {
  const given = new Map<string, string>();
  let configFile: string | undefined;
  let action: ParsedCommandLine['action'] = 'serve';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('-') || arg === '-' || arg === '--') throw new FlagError(`unexpected argument "${arg}" (cairn takes only flags; see --help)`);
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq === -1 ? body : body.slice(0, eq);
    if (name === 'version') {
      action = 'version';
      continue;
    }
    if (name === 'help' || name === 'h') {
      action = 'help';
      continue;
    }
    const spec = name === 'config-file' ? ({ kind: 'string', status: 'honoured' } as FlagSpec) : FLAGS[name];
    if (spec === undefined) throw new FlagError(`flag provided but not defined: -${name}`);
    let value: string;
    if (eq !== -1) value = body.slice(eq + 1);
    else if (spec.kind === 'bool') value = 'true';
    else {
      if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: -${name}`);
      value = argv[++i];
    }
    if (given.has(name)) throw new FlagError(`flag -${name} given more than once`);
    if (name === 'config-file') configFile = value;
    else given.set(name, value);
  }
  const fromEnv = new Map<string, string>();
  for (const name of [...Object.keys(FLAGS), 'config-file']) {
    const envName = `ETCD_${name.toUpperCase().replace(/-/g, '_')}`;
    const v = env[envName];
    if (v === undefined) continue;
    if (given.has(name) || (name === 'config-file' && configFile !== undefined)) {
      throw new FlagError(`conflicting environment variable "${envName}" is shadowed by corresponding command-line flag "--${name}" (either unset environment variable or disable flag)`);
    }
    if (name === 'config-file') configFile = v;
    else fromEnv.set(name, v);
  }
  const values = configFile !== undefined ? readConfigFile(configFile) : new Map([...fromEnv, ...given]);
  return { ...buildConfig(values), action };
}

function buildConfig(values: Map<string, string>): Omit<ParsedCommandLine, 'action'> {
  const config = defaultConfig();
  const notices: string[] = [];
  for (const [name, raw] of values) {
    const spec = FLAGS[name];
    if (spec === undefined) throw new FlagError(`unknown configuration key "${name}"`);
    const value = spec.kind === 'bool' ? bool(raw, name) : raw;
    if (spec.kind === 'uint') uint(value, name);
    if (spec.kind === 'urls') urls(value, name);
    if (spec.status === 'honoured') spec.set!(config, value);
    else if (spec.status === 'accepted') notices.push(`--${name} is accepted but has no effect: ${spec.note}`);
    else if (!(spec.kind === 'bool' && value === 'false') && value !== '') {
      throw new FlagError(`--${name} cannot be used yet: ${spec.note}`);
    }
  }
  if (config.dataDir === '') config.dataDir = defaultDataDir(config.name);
  checkSingleMember(config);
  return { config, notices };
}

/** --initial-cluster must be well formed and name this member (etcd's checks). */
function checkSingleMember(c: ServerConfig): void {
  if (c.initialCluster === '') {
    c.initialCluster = c.initialAdvertisePeerUrls.map((u) => `${c.name}=${u}`).join(',');
    return;
  }
  const members = new Set<string>();
  for (const part of c.initialCluster.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new FlagError(`invalid value "${c.initialCluster}" for flag -initial-cluster: expected name=peerURL,...`);
    urls(part.slice(eq + 1), 'initial-cluster');
    members.add(part.slice(0, eq));
  }
  if (!members.has(c.name)) {
    throw new FlagError(`couldn't find local name "${c.name}" in the initial cluster configuration`);
  }
}

function readConfigFile(path: string): Map<string, string> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new FlagError(`cannot read --config-file ${path}: ${(e as Error).message}`);
  }
  const out = new Map<string, string>();
  if (doc === null || doc === undefined) return out;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new FlagError(`--config-file ${path}: expected a YAML mapping`);
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    if (key === 'client-transport-security' || key === 'peer-transport-security') {
      const prefix = key === 'peer-transport-security' ? 'peer-' : '';
      for (const [k, v] of Object.entries((value ?? {}) as Record<string, unknown>)) {
        if (v === null || v === '' || v === false) continue;
        out.set(`${prefix}${k}`, String(v));
      }
      continue;
    }
    if (value === null || value === undefined) continue;
    if (!(key in FLAGS)) {
      // etcd's YAML has keys for things cairn has no flag for (proxy, discovery); they must be empty.
      if (value === '' || value === 0 || value === false || value === 'off') continue;
      throw new FlagError(`--config-file ${path}: unknown key "${key}"`);
    }
    out.set(key, Array.isArray(value) ? value.join(',') : String(value));
  }
  return out;
}

/** A Go duration ("10m", "1.5s", "1h30m", "500ms"); a bare number is taken as nanoseconds, as Go's flag package does not allow, so it is refused. */
export function durationMs(v: string, name: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(v); m !== null; m = re.exec(v)) {
    total += Number(m[1]) * units[m[2]];
    matched = re.lastIndex;
  }
  if (v === '' || matched !== v.length || total <= 0) throw new FlagError(`invalid value "${v}" for flag -${name}: expected a duration like 10m, 30s or 500ms`);
  return Math.max(1, Math.round(total));
}

function bool(v: string, name: string): string {
  const s = v.toLowerCase();
  if (['true', '1', 't'].includes(s)) return 'true';
  if (['false', '0', 'f'].includes(s)) return 'false';
  throw new FlagError(`invalid boolean value "${v}" for -${name}`);
}

function uint(v: string, name: string): number {
  if (!/^\d+$/.test(v.trim())) throw new FlagError(`invalid value "${v}" for flag -${name}: parse error`);
  const n = Number(v.trim());
  if (!Number.isSafeInteger(n)) throw new FlagError(`invalid value "${v}" for flag -${name}: value out of range`);
  return n;
}

function urls(v: string, name: string): string[] {
  const list = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw new FlagError(`invalid value "${v}" for flag -${name}: no URLs`);
  for (const u of list) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new FlagError(`invalid value "${v}" for flag -${name}: "${u}" is not a URL`);
    }
    if (!['http:', 'https:', 'unix:', 'unixs:'].includes(parsed.protocol)) {
      throw new FlagError(`invalid value "${v}" for flag -${name}: URL scheme must be http, https, unix or unixs: ${u}`);
    }
  }
  return list;
}
