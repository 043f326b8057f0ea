import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerProc, etcdctl, startCairn } from '../../bench/lib/procs';

// The HTTP endpoints served on the client port beside gRPC.

let server: ServerProc;
beforeAll(async () => {
  server = await startCairn({});
});
afterAll(async () => {
  await server?.stop();
});

describe('HTTP on the client port', () => {
  it('/health answers etcd\'s JSON', async () => {
    const res = await fetch(`${server.endpoint}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ health: 'true' });
  });

  it('/version names the etcd API version and cairn\'s', async () => {
    const body = (await (await fetch(`${server.endpoint}/version`)).json()) as Record<string, string>;
    expect(body.etcdserver).toBe('3.4.0');
    expect(body.etcdcluster).toBe('3.4.0');
    expect(body.cairn).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('/metrics has etcd\'s metric names and counts what happened', async () => {
    const put = await etcdctl(server.endpoint, ['put', 'metrics-key', 'v']);
    expect(put.code).toBe(0);
    const text = await (await fetch(`${server.endpoint}/metrics`)).text();
    for (const name of [
      'etcd_server_has_leader 1',
      'etcd_server_leader_changes_seen_total',
      'etcd_server_proposals_committed_total',
      'etcd_server_proposals_applied_total',
      'etcd_server_proposals_pending',
      'etcd_server_proposals_failed_total',
      'etcd_server_version{server_version="3.4.0"} 1',
      'etcd_cluster_version{cluster_version="3.4"} 1',
      'etcd_mvcc_put_total',
      'etcd_mvcc_delete_total',
      'etcd_debugging_mvcc_keys_total',
      'etcd_mvcc_db_total_size_in_bytes',
      'etcd_disk_wal_fsync_duration_seconds_bucket',
      'etcd_disk_backend_commit_duration_seconds_bucket',
      'etcd_network_peer_round_trip_time_seconds',
    ]) {
      expect(text, name).toContain(name);
    }
    expect(text).toMatch(/^etcd_mvcc_put_total [1-9]/m);
    expect(text).toContain('grpc_server_handled_total{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Put",grpc_code="OK"}');
  });

  it('unknown paths get 404 and gRPC keeps working on the same port', async () => {
    expect((await fetch(`${server.endpoint}/nope`)).status).toBe(404);
    const get = await etcdctl(server.endpoint, ['get', 'metrics-key', '--print-value-only']);
    expect(get.stdout.trim()).toBe('v');
  });
});
