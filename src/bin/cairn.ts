#!/usr/bin/env node
import pino from 'pino';
import { ApiServer } from '../api/grpc-server';
import { ServerConfig } from '../server/config';
import { CairnServer } from '../server/server';
import { FlagError, parseCommandLine } from './flags';
import { CAIRN_VERSION, ETCD_API_VERSION } from '../version';

// The `cairn` server process: etcd's command line, one member, clean stop on SIGINT/SIGTERM.
// It never daemonizes; logs are JSON lines (pino) on stderr, like etcd's zap logger.

function makeLogger(cfg: ServerConfig): pino.Logger {
  const level = cfg.logLevel === 'panic' ? 'fatal' : cfg.logLevel;
  const fd = cfg.logOutputs.includes('stdout') ? 1 : 2;
  return pino({ level, base: { name: cfg.name }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd, sync: true }));
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseCommandLine(process.argv.slice(2), process.env);
  } catch (e) {
    if (e instanceof FlagError) {
      process.stderr.write(`cairn: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  if (parsed.action === 'version') {
    process.stdout.write(`cairn Version: ${CAIRN_VERSION}\netcd API Version: ${ETCD_API_VERSION}\nNode Version: ${process.version}\n`);
    return;
  }
  if (parsed.action === 'help') {
    process.stdout.write(usage());
    return;
  }
  const cfg = parsed.config;
  const log = makeLogger(cfg);
  for (const n of parsed.notices) log.warn(n);
  log.info({ version: CAIRN_VERSION, data_dir: cfg.dataDir, listen_client_urls: cfg.listenClientUrls }, 'starting cairn');
  let member: CairnServer;
  let api: ApiServer;
  try {
    member = await CairnServer.open(cfg, log);
    api = await ApiServer.start(member, log);
  } catch (e) {
    log.fatal({ err: e }, 'cannot start');
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'received signal; shutting down');
    void (async () => {
      await member.handOverLeadership();
      await api.stop();
      await member.stop();
      log.info('stopped');
      process.exit(0);
    })().catch((e) => {
      log.error({ err: e }, 'error while stopping');
      process.exit(1);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  log.info({ client_urls: api.listeners.map((l) => l.url), ports: api.listeners.map((l) => l.port) }, 'ready to serve client requests');
}

function usage(): string {
  return [
    'Usage: cairn [flags]',
    '',
    'cairn is a strongly consistent key-value store that speaks the etcd v3 API.',
    'It takes etcd\'s flags (and ETCD_* environment variables, or --config-file with etcd\'s YAML keys):',
    '  --name, --data-dir (default "<name>.cairn"), --wal-dir, --listen-client-urls, --advertise-client-urls,',
    '  --initial-advertise-peer-urls, --initial-cluster, --initial-cluster-token, --initial-cluster-state,',
    '  --max-request-bytes (default 1572864), --max-txn-ops (default 128), --quota-backend-bytes,',
    '  --log-level, --logger, --log-outputs, --version',
    '',
  ].join('\n');
}

void main();
