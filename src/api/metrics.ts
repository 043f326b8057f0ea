import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CairnServer } from '../server/server';
import { CAIRN_VERSION, ETCD_API_VERSION } from '../version';

const RTT_SAMPLE_INTERVAL_MS = 5000;

// /metrics in Prometheus text format, with etcd's metric names so existing dashboards and
// alerts work. Gauges read the member's live state when scraped.

export interface HandledCount {
  readonly labels: Record<'grpc_type' | 'grpc_service' | 'grpc_method' | 'grpc_code', string>;
  count: number;
}

export class Metrics {
  readonly registry = new Registry();
  /** grpc_server_handled_total's counts, one per label set (handledCounter). */
  private readonly handled: HandledCount[] = [];

  constructor(member: CairnServer) {
    const r = this.registry;
    collectDefaultMetrics({ register: r });
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({ name, help, registers: [r], collect() { this.set(read()); } });
    };
    gauge('etcd_server_has_leader', 'Whether or not a leader exists. 1 is existence, 0 is not.', () => (member.leaderId !== 0n ? 1 : 0));
    gauge('etcd_server_is_leader', 'Whether or not this member is a leader. 1 if is, 0 otherwise.', () => (member.leaderId === member.meta.memberId ? 1 : 0));
    gauge('etcd_server_leader_changes_seen_total', 'The number of leader changes seen.', () => member.leaderChanges);
    gauge('etcd_server_proposals_committed_total', 'The total number of consensus proposals committed.', () => member.commitIndex);
    gauge('etcd_server_proposals_applied_total', 'The total number of consensus proposals applied.', () => member.appliedIndex);
    gauge('etcd_server_proposals_pending', 'The current number of pending proposals to commit.', () => member.pendingProposals);
    gauge('etcd_server_proposals_failed_total', 'The total number of failed proposals seen.', () => member.counters.proposalsFailed);
    gauge('etcd_mvcc_put_total', 'Total number of puts seen by this member.', () => member.store.stats().putsTotal);
    gauge('etcd_mvcc_delete_total', 'Total number of deletes seen by this member.', () => member.store.stats().deletesTotal);
    gauge('etcd_debugging_mvcc_keys_total', 'Total number of keys.', () => member.store.stats().keysTotal);
    gauge('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.', () => member.store.stats().dbSizeBytes);
    gauge('etcd_debugging_mvcc_watcher_total', 'Total number of watchers.', () => member.watchHub.watcherCount);
    gauge('etcd_debugging_lease_total', 'The number of leases.', () => member.lessor.size);
    const version = new Gauge({ name: 'etcd_server_version', help: 'Which version is running. 1 for \'server_version\' label with current version.', labelNames: ['server_version'], registers: [r] });
    version.set({ server_version: ETCD_API_VERSION }, 1);
    const cluster = new Gauge({ name: 'etcd_cluster_version', help: 'Which version is running. 1 for \'cluster_version\' label with current cluster version', labelNames: ['cluster_version'], registers: [r] });
    cluster.set({ cluster_version: ETCD_API_VERSION.split('.').slice(0, 2).join('.') }, 1);
    const cairn = new Gauge({ name: 'cairn_server_version', help: 'cairn\'s own version.', labelNames: ['version'], registers: [r] });
    cairn.set({ version: CAIRN_VERSION }, 1);
    const buckets = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);
    const walFsync = new Histogram({ name: 'etcd_disk_wal_fsync_duration_seconds', help: 'The latency distributions of fsync called by WAL.', buckets, registers: [r] });
    const backendCommit = new Histogram({ name: 'etcd_disk_backend_commit_duration_seconds', help: 'The latency distributions of commit called by backend.', buckets, registers: [r] });
    const rtt = new Histogram({
      name: 'etcd_network_peer_round_trip_time_seconds',
      help: 'Round-Trip-Time histogram between peers',
      labelNames: ['To'],
      buckets: Array.from({ length: 16 }, (_, i) => 0.0001 * 2 ** i),
      registers: [r],
    });
    // The peer transport measures round trips with its pings; sample them as etcd does.
    const rttTimer = setInterval(() => {
      for (const [id, st] of member.transport?.stats() ?? []) {
        if (st.rttSeconds !== undefined) rtt.observe({ To: id.toString(16) }, st.rttSeconds);
      }
    }, RTT_SAMPLE_INTERVAL_MS);
    rttTimer.unref();
    member.observeStorage(
      (s) => walFsync.observe(s),
      (s) => backendCommit.observe(s),
    );
    const handled = this.handled;
    new Counter({
      name: 'grpc_server_handled_total',
      help: 'Total number of RPCs completed on the server, regardless of success or failure.',
      labelNames: ['grpc_type', 'grpc_service', 'grpc_method', 'grpc_code'],
      registers: [r],
      // Counted in plain numbers on every call (prom-client hashes the labels of every
      // inc(), which showed in the allocation profile of a busy member); read at scrape.
      collect() {
        this.reset();
        for (const h of handled) if (h.count > 0) this.inc(h.labels, h.count);
      },
    });
  }

  /** A counter for one label set of grpc_server_handled_total; inc() is a field update. */
  handledCounter(labels: Record<'grpc_type' | 'grpc_service' | 'grpc_method' | 'grpc_code', string>): HandledCount {
    const h = { labels, count: 0 };
    this.handled.push(h);
    return h;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
