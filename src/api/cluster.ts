import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { etcdserverpb } from '../gen/proto';
import { uint64 } from '../server/convert';
import { Errors } from '../server/errors';
import { CairnServer } from '../server/server';
import { method } from './codec';
import { ErrorMapper } from './status';
import { noCheck, unaryHandler } from './unary';

// etcd's Cluster service. Until members can join, the cluster is this one member:
// MemberList answers; membership changes say clearly that they are not available yet.

const pb = etcdserverpb;

export const clusterService: ServiceDefinition = {
  MemberAdd: method('/etcdserverpb.Cluster/MemberAdd', pb.MemberAddRequest, pb.MemberAddResponse),
  MemberRemove: method('/etcdserverpb.Cluster/MemberRemove', pb.MemberRemoveRequest, pb.MemberRemoveResponse),
  MemberUpdate: method('/etcdserverpb.Cluster/MemberUpdate', pb.MemberUpdateRequest, pb.MemberUpdateResponse),
  MemberList: method('/etcdserverpb.Cluster/MemberList', pb.MemberListRequest, pb.MemberListResponse),
  MemberPromote: method('/etcdserverpb.Cluster/MemberPromote', pb.MemberPromoteRequest, pb.MemberPromoteResponse),
};

export function clusterImplementation(member: CairnServer, errors: ErrorMapper): UntypedServiceImplementation {
  const unary = unaryHandler(member, errors);
  // Members announce their client URLs to each other over the peer transport.
  const list = (): etcdserverpb.IMember[] =>
    member.meta.members.map((m) => ({
      ID: uint64(m.id),
      name: m.name,
      peerURLs: m.peerUrls.length > 0 ? m.peerUrls : member.config.initialAdvertisePeerUrls,
      clientURLs: member.clientUrls(m.id),
      isLearner: false,
    }));
  const notYet = (): never => {
    throw Errors.notImplemented('membership changes (a cluster of several members)');
  };
  return {
    MemberList: unary(noCheck, async (): Promise<etcdserverpb.IMemberListResponse> => ({ members: list() })),
    MemberAdd: unary(noCheck, notYet),
    MemberRemove: unary(noCheck, notYet),
    MemberUpdate: unary(noCheck, notYet),
    MemberPromote: unary(noCheck, notYet),
  };
}
