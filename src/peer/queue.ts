/**
 * A bounded FIFO of messages waiting for one peer: a ring of fixed capacity, so pushing and
 * shifting allocate nothing. Bounded by count and by total bytes.
 */
export class MessageQueue {
  private readonly ring: (Uint8Array | undefined)[];
  private head = 0;
  length = 0;
  bytes = 0;

  constructor(
    readonly capacity: number,
    readonly bytesMax: number,
  ) {
    this.ring = new Array<Uint8Array | undefined>(capacity).fill(undefined);
  }

  /** False when full: the message is not queued. */
  push(message: Uint8Array): boolean {
    if (this.length === this.capacity || this.bytes + message.length > this.bytesMax) return false;
    this.ring[(this.head + this.length) % this.capacity] = message;
    this.length++;
    this.bytes += message.length;
    return true;
  }

  /** The i-th waiting message, 0 being the oldest; i < length. */
  at(i: number): Uint8Array {
    return this.ring[(this.head + i) % this.capacity]!;
  }

  shift(): Uint8Array {
    const m = this.ring[this.head]!;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.length--;
    this.bytes -= m.length;
    return m;
  }

  clear(): void {
    while (this.length > 0) this.shift();
  }
}
