import { status as Status, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { HandledCount, Metrics } from './metrics';

// Counts every completed RPC in grpc_server_handled_total with go-grpc-prometheus's labels.

const CODE_NAMES: Record<number, string> = {
  0: 'OK', 1: 'Canceled', 2: 'Unknown', 3: 'InvalidArgument', 4: 'DeadlineExceeded', 5: 'NotFound',
  6: 'AlreadyExists', 7: 'PermissionDenied', 8: 'ResourceExhausted', 9: 'FailedPrecondition', 10: 'Aborted',
  11: 'OutOfRange', 12: 'Unimplemented', 13: 'Internal', 14: 'Unavailable', 15: 'DataLoss', 16: 'Unauthenticated',
};

type AnyHandler = (...args: any[]) => void; // eslint-disable-line @typescript-eslint/no-explicit-any

export function instrument(def: ServiceDefinition, impl: UntypedServiceImplementation, metrics: Metrics): UntypedServiceImplementation {
  const out: UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(impl)) {
    const d = def[name];
    const [, service, method] = d.path.split('/');
    const type = d.requestStream ? (d.responseStream ? 'bidi_stream' : 'client_stream') : d.responseStream ? 'server_stream' : 'unary';
    const children = new Map<number, HandledCount>();
    const count = (code: number): void => {
      let c = children.get(code);
      if (c === undefined) {
        c = metrics.handledCounter({ grpc_type: type, grpc_service: service, grpc_method: method, grpc_code: CODE_NAMES[code] ?? String(code) });
        children.set(code, c);
      }
      c.count++;
    };
    const h = handler as AnyHandler;
    if (type === 'unary') {
      out[name] = ((call: unknown, callback: (err: { code?: number; details?: string } | null, res?: unknown) => void) => {
        const done = (err: { code?: number; details?: string } | null, res?: unknown): void => {
          count(err ? err.code ?? Status.UNKNOWN : Status.OK);
          callback(err, res);
        };
        try {
          h(call, done);
        } catch (e) {
          // A bug in one handler answers that call with Internal; it must not stop the member.
          done({ code: Status.INTERNAL, details: `cairn: internal error: ${e instanceof Error ? e.message : String(e)}` });
        }
      }) as AnyHandler;
    } else {
      out[name] = ((call: { on(ev: string, f: () => void): void }) => {
        let counted = false;
        const once = (code: number) => () => {
          if (!counted) count(code);
          counted = true;
        };
        call.on('finish', once(Status.OK));
        call.on('cancelled', once(Status.CANCELLED));
        try {
          h(call);
        } catch (e) {
          once(Status.INTERNAL)();
          (call as unknown as { emit(ev: string, err: unknown): void }).emit('error', {
            code: Status.INTERNAL,
            details: `cairn: internal error: ${e instanceof Error ? e.message : String(e)}`,
          });
        }
      }) as AnyHandler;
    }
  }
  return out;
}
