import type { ServerWritableStream, ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { etcdserverpb } from '../gen/proto';
import { toBigInt } from '../server/convert';
import { CairnServer } from '../server/server';
import { method } from './codec';
import { ErrorMapper } from './status';
import { callerOf } from './caller';
import { noCheck, unaryHandler } from './unary';

// etcd's Maintenance service: Status, Alarm, Hash, HashKV, Snapshot, Defragment, MoveLeader.

const pb = etcdserverpb;

export const maintenanceService: ServiceDefinition = {
  Alarm: method('/etcdserverpb.Maintenance/Alarm', pb.AlarmRequest, pb.AlarmResponse),
  Status: method('/etcdserverpb.Maintenance/Status', pb.StatusRequest, pb.StatusResponse),
  Defragment: method('/etcdserverpb.Maintenance/Defragment', pb.DefragmentRequest, pb.DefragmentResponse),
  Hash: method('/etcdserverpb.Maintenance/Hash', pb.HashRequest, pb.HashResponse),
  HashKV: method('/etcdserverpb.Maintenance/HashKV', pb.HashKVRequest, pb.HashKVResponse),
  Snapshot: method('/etcdserverpb.Maintenance/Snapshot', pb.SnapshotRequest, pb.SnapshotResponse, { response: true }),
  MoveLeader: method('/etcdserverpb.Maintenance/MoveLeader', pb.MoveLeaderRequest, pb.MoveLeaderResponse),
};

export function maintenanceImplementation(member: CairnServer, errors: ErrorMapper, log: Logger): UntypedServiceImplementation {
  const unary = unaryHandler(member, errors);
  return {
    // As etcd: defragment, hashes, snapshots (and here also leader moves and alarm
    // changes) need root once auth is on; status and alarm lists need a known user.
    Alarm: unary(noCheck, (r: etcdserverpb.AlarmRequest, caller) => {
      if ((r.action ?? 0) === etcdserverpb.AlarmRequest.AlarmAction.GET) member.auth.checkAuthenticated(caller);
      else member.auth.checkAdmin(caller);
      return member.alarm(r);
    }),
    Status: unary(noCheck, (_r: unknown, caller) => (member.auth.checkAuthenticated(caller), member.status())),
    Defragment: unary(noCheck, (_r: unknown, caller) => (member.auth.checkAdmin(caller), member.defragment())),
    Hash: unary(noCheck, (_r: unknown, caller) => (member.auth.checkAdmin(caller), member.hash())),
    HashKV: unary(noCheck, (r: etcdserverpb.HashKVRequest, caller) => (member.auth.checkAdmin(caller), member.hashKV(r))),
    MoveLeader: unary(noCheck, (r: etcdserverpb.MoveLeaderRequest, caller) => (member.auth.checkAdmin(caller), member.moveLeader(toBigInt(r.targetID, true)))),
    Snapshot: (call: ServerWritableStream<etcdserverpb.SnapshotRequest, etcdserverpb.ISnapshotResponse>) => {
      void (async () => {
        try {
          member.auth.checkAdmin(callerOf(member, call));
          for await (const blob of member.snapshot()) {
            if (call.cancelled) return;
            if (!call.write({ header: member.header(), remainingBytes: 0, blob })) {
              await new Promise((resolve) => call.once('drain', resolve));
            }
          }
          call.end();
        } catch (e) {
          log.error({ err: e }, 'snapshot failed');
          call.emit('error', errors.toStatus(e));
        }
      })();
    },
  };
}
