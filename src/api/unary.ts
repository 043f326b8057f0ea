import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import type { AuthInfo } from '../auth/store';
import { etcdserverpb } from '../gen/proto';
import { CairnServer } from '../server/server';
import { callerOf } from './caller';
import { ErrorMapper } from './status';

// The shape every unary handler shares: check the request, find out who calls, run it,
// fill the response header with cluster, member, revision and term, map errors to etcd's
// statuses.

export interface WithHeader {
  header?: etcdserverpb.IResponseHeader | null;
}

export function unaryHandler(member: CairnServer, errors: ErrorMapper) {
  return <Req, Res extends WithHeader>(check: (r: Req) => void, run: (r: Req, caller: AuthInfo) => Promise<Res> | Res) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      let pending: Promise<Res> | Res;
      try {
        check(call.request);
        pending = run(call.request, callerOf(member, call));
      } catch (e) {
        callback(errors.toStatus(e));
        return;
      }
      Promise.resolve(pending).then(
        (resp) => {
          resp.header = member.header(resp.header?.revision ? Number(resp.header.revision) : undefined);
          callback(null, resp);
        },
        (e) => callback(errors.toStatus(e)),
      );
    };
}

export const noCheck = (): void => undefined;
