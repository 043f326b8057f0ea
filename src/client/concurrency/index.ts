/**
 * etcd's clientv3/concurrency recipes with etcd's exact key layout and requests, so Go
 * programs, `etcdctl lock` / `etcdctl elect` and TypeScript processes share locks and
 * elections:
 *
 *   const session = await newSession(client, { ttl: 10 });
 *   const m = newMutex(session, 'my-lock');       // keys my-lock/<lease hex>
 *   await m.lock({ signal }); ...; await m.unlock();
 *   const e = newElection(session, 'my-election');
 *   await e.campaign('me'); for await (const l of e.observe()) console.log(l.value);
 *   await runSTM(client, async (stm) => { stm.put('b', String(Number(await stm.get('a')) + 1)); });
 *   await session.close();                        // revokes the lease: releases everything
 */
export { Session, newSession, DEFAULT_SESSION_TTL, type SessionOptions, type SessionEnd } from './session';
export { Mutex, newMutex, type LockOptions } from './mutex';
export { Election, newElection, type LeaderObservation } from './election';
export { runSTM, runSTMRepeatable, runSTMSerializable, runSTMReadCommitted, type STM, type STMOptions, type Isolation } from './stm';
export { waitDelete, waitDeletes } from './key';
export {
  ConcurrencyError,
  ErrLocked,
  ErrSessionExpired,
  ErrLockReleased,
  ErrElectionNotLeader,
  ErrElectionNoLeader,
  ErrLostWatcher,
  ErrSTMConflict,
} from './errors';
