/**
 * A raw Watch/Lease client over grpc-js with the generated types, for tests that need many
 * watchers per stream, many streams, or a stream that stops reading.
 */
import * as grpc from '@grpc/grpc-js';
import type Long from 'long';
import { etcdserverpb } from '../../src/gen/proto';

const pb = etcdserverpb;
const ser = <T>(t: { encode(m: T): { finish(): Uint8Array } }) => (m: T): Buffer => Buffer.from(t.encode(m).finish());

/** A client on a connection of its own (grpc-js would otherwise share one per target between clients with the same options). */
export function grpcClient(endpoint: string): grpc.Client {
  return new grpc.Client(endpoint.replace(/^https?:\/\//, ''), grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1,
    'grpc.use_local_subchannel_pool': 1,
  });
}

export class WatchStreamClient {
  readonly call: grpc.ClientDuplexStream<etcdserverpb.IWatchRequest, etcdserverpb.WatchResponse>;
  readonly responses: etcdserverpb.WatchResponse[] = [];
  private waiters: Array<() => void> = [];

  constructor(client: grpc.Client) {
    this.call = client.makeBidiStreamRequest(
      '/etcdserverpb.Watch/Watch',
      ser(pb.WatchRequest),
      (b: Buffer) => pb.WatchResponse.decode(b),
    );
    this.call.on('data', (r: etcdserverpb.WatchResponse) => {
      this.responses.push(r);
      for (const w of this.waiters.splice(0)) w();
    });
    this.call.on('error', () => undefined);
  }

  create(req: etcdserverpb.IWatchCreateRequest): void {
    this.call.write({ createRequest: req });
  }

  cancel(watchId: number): void {
    this.call.write({ cancelRequest: { watchId } });
  }

  /** Resolves when `pred` holds over the responses so far, or rejects after `timeoutMs`. */
  async until(pred: (rs: etcdserverpb.WatchResponse[]) => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.responses)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what} (${this.responses.length} responses so far)`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  events(): Array<{ watchId: number; type: string; key: string; value: string; rev: number }> {
    const out = [];
    for (const r of this.responses) {
      for (const e of r.events) {
        out.push({
          watchId: Number(r.watchId),
          type: e.type === 1 ? 'DELETE' : 'PUT',
          key: Buffer.from(e.kv!.key!).toString(),
          value: Buffer.from(e.kv!.value ?? []).toString(),
          rev: Number(e.kv!.modRevision),
        });
      }
    }
    return out;
  }

  end(): void {
    this.call.end();
    this.call.cancel();
  }
}

export function unary<Req, Res>(
  client: grpc.Client,
  path: string,
  reqType: { encode(m: Req): { finish(): Uint8Array } },
  resType: { decode(b: Uint8Array): Res },
  req: Req,
  deadlineMs = 10_000,
): Promise<Res> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(path, ser(reqType), (b: Buffer) => resType.decode(b), req, { deadline: Date.now() + deadlineMs }, (err, res) =>
      err ? reject(err) : resolve(res as Res),
    ),
  );
}

export const put = (c: grpc.Client, key: string, value: string | Buffer, lease: number | Long = 0): Promise<etcdserverpb.PutResponse> =>
  unary(c, '/etcdserverpb.KV/Put', pb.PutRequest, pb.PutResponse, { key: Buffer.from(key), value: typeof value === 'string' ? Buffer.from(value) : value, lease });

export const range = (c: grpc.Client, key: string, rangeEnd?: string): Promise<etcdserverpb.RangeResponse> =>
  unary(c, '/etcdserverpb.KV/Range', pb.RangeRequest, pb.RangeResponse, { key: Buffer.from(key), rangeEnd: rangeEnd === undefined ? undefined : Buffer.from(rangeEnd) });

export const leaseGrant = (c: grpc.Client, ttl: number): Promise<etcdserverpb.LeaseGrantResponse> =>
  unary(c, '/etcdserverpb.Lease/LeaseGrant', pb.LeaseGrantRequest, pb.LeaseGrantResponse, { TTL: ttl });

/** Runs `fn` over `items` with at most `n` in flight. */
export async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]);
    }),
  );
}
