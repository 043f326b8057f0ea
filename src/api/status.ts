import { Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { EtcdError } from '../server/errors';

// Turns errors into gRPC statuses: etcd's errors keep their code and message (clients match
// on the strings); anything else is a server bug, logged, and reported as Internal.

export class ErrorMapper {
  constructor(private readonly log: Logger) {}

  toStatus(e: unknown): Partial<ServiceError> {
    if (e instanceof EtcdError) return { code: e.code as number as Status, details: e.message, metadata: new Metadata() };
    this.log.error({ err: e }, 'request failed with an internal error');
    const message = e instanceof Error ? e.message : String(e);
    return { code: Status.INTERNAL, details: `cairn: internal error: ${message}`, metadata: new Metadata() };
  }
}
