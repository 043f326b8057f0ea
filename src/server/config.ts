// The member's configuration: etcd's flag names, values and defaults. The command line,
// ETCD_* variables and --config-file (etcd's YAML keys) all fill this one shape; see
// src/bin/flags.ts for how.

export interface ServerConfig {
  name: string;
  dataDir: string;
  walDir: string;
  listenClientUrls: string[];
  advertiseClientUrls: string[];
  listenPeerUrls: string[];
  initialAdvertisePeerUrls: string[];
  initialCluster: string;
  initialClusterState: 'new' | 'existing';
  initialClusterToken: string;
  maxRequestBytes: number;
  maxTxnOps: number;
  quotaBackendBytes: number;
  snapshotCount: number;
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'panic' | 'fatal';
  logger: 'zap' | 'capnslog';
  logOutputs: string[];
  /** --strict-reconfig-check (etcd's default: on): refuse membership changes that would leave too few started members. */
  strictReconfigCheck: boolean;
  /** --experimental-initial-corrupt-check: compare the store's hash with the peers' before serving. */
  initialCorruptCheck: boolean;
  /** --max-concurrent-streams: HTTP/2 streams per client connection. */
  maxConcurrentStreams: number;
  /** Client TLS: --cert-file, --key-file, --trusted-ca-file, --client-cert-auth, --client-crl-file, --auto-tls, --cipher-suites. */
  certFile: string;
  keyFile: string;
  trustedCaFile: string;
  clientCertAuth: boolean;
  clientCrlFile: string;
  autoTls: boolean;
  cipherSuites: string;
  /** Peer TLS: --peer-cert-file, --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth, --peer-crl-file, --peer-auto-tls, --peer-cert-allowed-cn, --peer-cert-allowed-hostname. */
  peerCertFile: string;
  peerKeyFile: string;
  peerTrustedCaFile: string;
  peerClientCertAuth: boolean;
  peerCrlFile: string;
  peerAutoTls: boolean;
  peerCertAllowedCn: string;
  peerCertAllowedHostname: string;
  /** --auth-token: "simple" or "jwt,pub-key=...,priv-key=...,sign-method=...,ttl=..." */
  authToken: string;
  /** --auth-token-ttl: seconds a simple token lives without use. */
  authTokenTtlSeconds: number;
  /** --bcrypt-cost: work factor of the password hashes (4-31). */
  bcryptCost: number;
  /** --force-new-cluster: restart as a one-member cluster from this member's data. */
  forceNewCluster: boolean;
  /** --experimental-watch-progress-notify-interval (etcd's default: 10 minutes). */
  watchProgressNotifyIntervalMs: number;
}

/** etcd's default quota: 2 GiB. */
export const QUOTA_BACKEND_BYTES_DEFAULT = 2 * 1024 * 1024 * 1024;
/** etcd's largest allowed quota: 8 GiB (it warns above it; cairn refuses). */
export const QUOTA_BACKEND_BYTES_MAX = 8 * 1024 * 1024 * 1024;
/** gRPC framing on top of a request: etcd lets messages this much larger than --max-request-bytes through gRPC. */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;

export function defaultConfig(): ServerConfig {
  return {
    name: 'default',
    dataDir: '',
    walDir: '',
    listenClientUrls: ['http://localhost:2379'],
    advertiseClientUrls: ['http://localhost:2379'],
    listenPeerUrls: ['http://localhost:2380'],
    initialAdvertisePeerUrls: ['http://localhost:2380'],
    initialCluster: '',
    initialClusterState: 'new',
    initialClusterToken: 'etcd-cluster',
    maxRequestBytes: 1.5 * 1024 * 1024,
    maxTxnOps: 128,
    quotaBackendBytes: 0,
    snapshotCount: 100_000,
    heartbeatIntervalMs: 100,
    electionTimeoutMs: 1000,
    logLevel: 'info',
    logger: 'zap',
    logOutputs: ['default'],
    watchProgressNotifyIntervalMs: 10 * 60 * 1000,
    forceNewCluster: false,
    peerCertFile: '',
    peerKeyFile: '',
    peerTrustedCaFile: '',
    peerClientCertAuth: false,
    peerCrlFile: '',
    peerAutoTls: false,
    peerCertAllowedCn: '',
    peerCertAllowedHostname: '',
    authToken: 'simple',
    authTokenTtlSeconds: 300,
    bcryptCost: 10,
    certFile: '',
    keyFile: '',
    trustedCaFile: '',
    clientCertAuth: false,
    clientCrlFile: '',
    autoTls: false,
    cipherSuites: '',
    strictReconfigCheck: true,
    initialCorruptCheck: false,
    maxConcurrentStreams: 2 ** 31 - 1,
  };
}

/** etcd's style of default data dir: "<name>.etcd"; cairn's is "<name>.cairn". */
export function defaultDataDir(name: string): string {
  return `${name}.cairn`;
}
