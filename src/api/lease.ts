import type { ServerDuplexStream, ServiceDefinition, UntypedServiceImplementation, sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { etcdserverpb } from '../gen/proto';
import { toBigInt } from '../server/convert';
import { CairnServer } from '../server/server';
import { method } from './codec';
import { ErrorMapper } from './status';

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

interface WithHeader {
  header?: etcdserverpb.IResponseHeader | null;
}

export function leaseImplementation(member: CairnServer, errors: ErrorMapper): UntypedServiceImplementation {
  const unary =
    <Req, Res extends WithHeader>(run: (r: Req) => Promise<Res>) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      run(call.request).then(
        (resp) => {
          resp.header = member.header(resp.header?.revision ? Number(resp.header.revision) : undefined);
          callback(null, resp);
        },
        (e) => callback(errors.toStatus(e)),
      );
    };
  return {
    LeaseGrant: unary((r: etcdserverpb.LeaseGrantRequest) => member.leaseGrant(r)),
    LeaseRevoke: unary((r: etcdserverpb.LeaseRevokeRequest) => member.leaseRevoke(r)),
    LeaseTimeToLive: unary((r: etcdserverpb.LeaseTimeToLiveRequest) => member.leaseTimeToLive(r)),
    LeaseLeases: unary(() => member.leaseLeases()),
    LeaseKeepAlive: (call: ServerDuplexStream<etcdserverpb.LeaseKeepAliveRequest, etcdserverpb.ILeaseKeepAliveResponse>) => {
      // Answers go out in the order the requests came, even when a renewal is forwarded.
      let previous: Promise<void> = Promise.resolve();
      call.on('data', (req: etcdserverpb.LeaseKeepAliveRequest) => {
        const renewed = member.leaseKeepAlive(toBigInt(req.ID));
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
