import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { etcdserverpb } from '../gen/proto';
import { validateSort } from '../server/apply';
import { CairnServer } from '../server/server';
import { method } from './codec';
import { checkDeleteRequest, checkPutRequest, checkRangeRequest, checkTxnRequest } from './validate';
import { ErrorMapper } from './status';
import { noCheck, unaryHandler } from './unary';

// etcd's KV service: validation as etcd's v3rpc does it, then the member's request paths,
// then the response header filled with cluster, member, revision and term.

const pb = etcdserverpb;

export const kvService: ServiceDefinition = {
  Range: method('/etcdserverpb.KV/Range', pb.RangeRequest, pb.RangeResponse),
  Put: method('/etcdserverpb.KV/Put', pb.PutRequest, pb.PutResponse),
  DeleteRange: method('/etcdserverpb.KV/DeleteRange', pb.DeleteRangeRequest, pb.DeleteRangeResponse),
  Txn: method('/etcdserverpb.KV/Txn', pb.TxnRequest, pb.TxnResponse),
  Compact: method('/etcdserverpb.KV/Compact', pb.CompactionRequest, pb.CompactionResponse),
};

export function kvImplementation(server: CairnServer, errors: ErrorMapper): UntypedServiceImplementation {
  const unary = unaryHandler(server, errors);
  const maxTxnOps = server.config.maxTxnOps;
  return {
    Range: unary<etcdserverpb.RangeRequest, etcdserverpb.IRangeResponse>(
      (r) => {
        checkRangeRequest(r);
        validateSort(r);
      },
      (r, caller) => server.range(r, caller),
    ),
    Put: unary<etcdserverpb.PutRequest, etcdserverpb.IPutResponse>(checkPutRequest, (r, caller) => server.put(r, caller)),
    DeleteRange: unary<etcdserverpb.DeleteRangeRequest, etcdserverpb.IDeleteRangeResponse>(checkDeleteRequest, (r, caller) => server.deleteRange(r, caller)),
    Txn: unary<etcdserverpb.TxnRequest, etcdserverpb.ITxnResponse>((r) => checkTxnRequest(r, maxTxnOps), (r, caller) => server.txn(r, caller)),
    Compact: unary<etcdserverpb.CompactionRequest, etcdserverpb.ICompactionResponse>(noCheck, (r, caller) => {
      server.auth.checkAuthenticated(caller); // etcd 3.4 lets anyone compact; cairn asks for a user
      return server.compact(r, caller);
    }),
  };
}
