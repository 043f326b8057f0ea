import type { MethodDefinition } from '@grpc/grpc-js';

// gRPC method definitions from the generated protobuf types: the wire names are etcd's
// (/etcdserverpb.KV/Range ...), so every etcd client can call them.

interface MessageType<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(reader: Uint8Array): T;
}

export function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export function method<Req, Res>(
  path: string,
  req: MessageType<Req>,
  res: MessageType<Res>,
  stream: { request?: boolean; response?: boolean } = {},
): MethodDefinition<Req, Res> {
  return {
    path,
    requestStream: stream.request === true,
    responseStream: stream.response === true,
    requestSerialize: (m: Req) => toBuffer(req.encode(m).finish()),
    requestDeserialize: (b: Buffer) => req.decode(b),
    responseSerialize: (m: Res) => toBuffer(res.encode(m).finish()),
    responseDeserialize: (b: Buffer) => res.decode(b),
  };
}
