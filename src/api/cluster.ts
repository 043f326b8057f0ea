import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { etcdserverpb } from '../gen/proto';
import { CairnServer } from '../server/server';
import { method } from './codec';
import { ErrorMapper } from './status';
import { noCheck, unaryHandler } from './unary';

// etcd's Cluster service: the membership as the log says it is, and changes to it through
// Raft (add, also as learner; remove; promote; update peer URLs).

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
  return {
    // Listing needs a known user once auth is on (etcd 3.4: anyone); changes need root, as in etcd.
    MemberList: unary(noCheck, async (_r: unknown, caller): Promise<etcdserverpb.IMemberListResponse> => {
      member.auth.checkAuthenticated(caller);
      return { members: member.memberList() };
    }),
    MemberAdd: unary(noCheck, (r: etcdserverpb.MemberAddRequest, caller) => (member.auth.checkAdmin(caller), member.memberAdd(r))),
    MemberRemove: unary(noCheck, (r: etcdserverpb.MemberRemoveRequest, caller) => (member.auth.checkAdmin(caller), member.memberRemove(r))),
    MemberUpdate: unary(noCheck, (r: etcdserverpb.MemberUpdateRequest, caller) => (member.auth.checkAdmin(caller), member.memberUpdate(r))),
    MemberPromote: unary(noCheck, (r: etcdserverpb.MemberPromoteRequest, caller) => (member.auth.checkAdmin(caller), member.memberPromote(r))),
  };
}
