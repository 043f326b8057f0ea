import type { ServerDuplexStream, ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { etcdserverpb } from '../gen/proto';
import { toBigInt } from '../server/convert';
import { CairnServer } from '../server/server';
import { method } from './codec';
import { ErrorMapper } from './status';
import { callerOf } from './caller';
import { noCheck, unaryHandler } from './unary';

// etcd's Lease service. Grants and revokes go through the log; keep-alives renew the
// leader's deadline directly, as etcd's do.

const pb = etcdserverpb;

export const leaseService: ServiceDefinition = {
  LeaseGrant: method('/etcdserverpb.Lease/LeaseGrant', pb.LeaseGrantRequest, pb.LeaseGrantResponse),
  LeaseRevoke: method('/etcdserverpb.Lease/LeaseRevoke', pb.LeaseRevokeRequest, pb.LeaseRevokeResponse),
  LeaseKeepAlive: method('/etcdserverpb.Lease/LeaseKeepAlive', pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse, { request: true, response: true }),
  LeaseTimeToLive: method('/etcdserverpb.Lease/LeaseTimeToLive', pb.LeaseTimeToLiveRequest, pb.LeaseTimeToLiveResponse),
  LeaseLeases: method('/etcdserverpb.Lease/LeaseLeases', pb.LeaseLeasesRequest, pb.LeaseLeasesResponse),
};

export function leaseImplementation(member: CairnServer, errors: ErrorMapper): UntypedServiceImplementation {
  const unary = unaryHandler(member, errors);
  return {
    // etcd 3.4 leaves grants, keep-alives and lease reads open to anyone; cairn asks for a
    // known user once auth is on. Revoking needs write access to every attached key.
    LeaseGrant: unary(noCheck, (r: etcdserverpb.LeaseGrantRequest, caller) => {
      member.auth.checkAuthenticated(caller);
      return member.leaseGrant(r);
    }),
    LeaseRevoke: unary(noCheck, (r: etcdserverpb.LeaseRevokeRequest, caller) => member.leaseRevoke(r, caller)),
    LeaseTimeToLive: unary(noCheck, (r: etcdserverpb.LeaseTimeToLiveRequest, caller) => {
      member.auth.checkAuthenticated(caller);
      return member.leaseTimeToLive(r);
    }),
    LeaseLeases: unary(noCheck, (_r: unknown, caller) => {
      member.auth.checkAuthenticated(caller);
      return member.leaseLeases();
    }),
    LeaseKeepAlive: (call: ServerDuplexStream<etcdserverpb.LeaseKeepAliveRequest, etcdserverpb.ILeaseKeepAliveResponse>) => {
      // Answers go out in the order the requests came, even when a renewal is forwarded.
      let previous: Promise<void> = Promise.resolve();
      call.on('data', (req: etcdserverpb.LeaseKeepAliveRequest) => {
        let renewed: Promise<number>;
        try {
          member.auth.checkAuthenticated(callerOf(member, call));
          renewed = member.leaseKeepAlive(toBigInt(req.ID));
        } catch (e) {
          renewed = Promise.reject(e);
        }
        previous = previous.then(() =>
          renewed.then(
            (ttl) => {
              if (!call.cancelled) call.write({ header: member.header(), ID: req.ID, TTL: ttl });
            },
            (e) => {
              call.emit('error', errors.toStatus(e));
            },
          ),
        );
      });
      call.on('end', () => call.end());
    },
  };
}
