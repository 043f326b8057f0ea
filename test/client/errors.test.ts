import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import {
  CompactedError,
  ConnectFailedError,
  EtcdError,
  KeyNotFoundError,
  LeaderChangedError,
  NoLeaderError,
  PermissionDeniedError,
  RequestTimedOutError,
  UnavailableError,
} from '../../src/client';
import { etcdError, fromGrpc } from '../../src/client/errors';
import { isRetriable } from '../../src/client/pool';

describe('typed errors and the retry rule', () => {
  it('etcd messages select the error class; code and details are kept', () => {
    const e = fromGrpc({ code: status.OUT_OF_RANGE, details: 'etcdserver: mvcc: required revision has been compacted', message: 'x' });
    expect(e).toBeInstanceOf(CompactedError);
    expect(e).toBeInstanceOf(EtcdError);
    expect(e.code).toBe(status.OUT_OF_RANGE);
    expect(e.details).toBe('etcdserver: mvcc: required revision has been compacted');
    expect(e.name).toBe('CompactedError');
    expect(etcdError(status.INVALID_ARGUMENT, 'etcdserver: key not found')).toBeInstanceOf(KeyNotFoundError);
    expect(etcdError(status.PERMISSION_DENIED, 'etcdserver: permission denied')).toBeInstanceOf(PermissionDeniedError);
    expect(etcdError(status.UNAVAILABLE, 'etcdserver: request timed out, possibly due to previous leader failure')).toBeInstanceOf(RequestTimedOutError);
    // Unknown message: the class comes from the status code.
    expect(etcdError(status.UNAVAILABLE, 'read ECONNRESET')).toBeInstanceOf(UnavailableError);
    expect(etcdError(status.INTERNAL, 'something else').constructor).toBe(EtcdError);
  });

  it('writes are sent again only when the failure proves they were not applied', () => {
    const noLeader = etcdError(status.UNAVAILABLE, 'etcdserver: no leader');
    expect(noLeader).toBeInstanceOf(NoLeaderError);
    const notSent = new ConnectFailedError(status.UNAVAILABLE, 'cannot connect');
    const grpcNotSent = etcdError(status.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED');
    const dropped = etcdError(status.UNAVAILABLE, 'Connection dropped');
    const timedOut = etcdError(status.UNAVAILABLE, 'etcdserver: request timed out');
    const leaderChanged = etcdError(status.UNAVAILABLE, 'etcdserver: leader changed');
    expect(leaderChanged).toBeInstanceOf(LeaderChangedError);
    for (const e of [noLeader, notSent, grpcNotSent]) expect(isRetriable(e, false)).toBe(true);
    for (const e of [dropped, timedOut, leaderChanged]) expect(isRetriable(e, false)).toBe(false);
    for (const e of [noLeader, notSent, grpcNotSent, dropped, timedOut, leaderChanged]) expect(isRetriable(e, true)).toBe(true);
    expect(isRetriable(etcdError(status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted'), true)).toBe(false);
  });
});
