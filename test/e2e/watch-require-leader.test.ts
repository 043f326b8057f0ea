import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdserverpb } from '../../src/gen/proto';
import { Cluster, startCairnCluster } from '../helpers/cluster';
import { grpcClient } from '../helpers/watch-client';

// clientv3's WithRequireLeader ("hasleader: true" metadata): a watch stream on a member that
// lost its leader ends with 'etcdserver: no leader', so the client can move to another one.

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCairnCluster(3, { snapshotDist: false });
});
afterAll(async () => {
  await cluster?.destroy();
});

describe('watch streams that require a leader', () => {
  it('end with "etcdserver: no leader" after the member loses its quorum; others stay open', async () => {
    const a = cluster.member('a');
    const client = grpcClient(a.endpoint);
    const md = new grpc.Metadata();
    md.set('hasleader', 'true');
    const ser = (m: etcdserverpb.IWatchRequest): Buffer => Buffer.from(etcdserverpb.WatchRequest.encode(m).finish());
    const de = (b: Buffer): etcdserverpb.WatchResponse => etcdserverpb.WatchResponse.decode(b);
    const strict = client.makeBidiStreamRequest('/etcdserverpb.Watch/Watch', ser, de, md);
    const plain = client.makeBidiStreamRequest('/etcdserverpb.Watch/Watch', ser, de, new grpc.Metadata());
    const ended = new Promise<grpc.ServiceError>((resolve) => strict.on('error', (e: grpc.ServiceError) => resolve(e)));
    let plainError: unknown;
    plain.on('error', (e: unknown) => (plainError = e));
    strict.on('data', () => undefined);
    plain.on('data', () => undefined);
    strict.write({ createRequest: { key: Buffer.from('x') } });
    plain.write({ createRequest: { key: Buffer.from('x') } });
    await new Promise((r) => setTimeout(r, 300));
    await cluster.member('b').kill9();
    await cluster.member('c').kill9();
    const err = await ended;
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(err.details).toBe('etcdserver: no leader');
    expect(plainError).toBeUndefined();
    plain.cancel();
    client.close();
  });
});
