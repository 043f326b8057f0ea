// The in-flight append messages to one follower in StateReplicate: a ring buffer of
// the last index of each unacknowledged MsgApp. Its capacity (maxInflightMsgs) bounds
// how far the leader runs ahead of a follower, and so the memory a slow follower costs.

import { assert } from './assert';

export class Inflights {
  private start = 0;
  private count = 0;
  private readonly buffer: number[];

  constructor(readonly capacity: number) {
    assert(capacity > 0, 'inflights capacity must be positive');
    this.buffer = new Array<number>(capacity).fill(0);
  }

  /** Record a MsgApp whose last entry is `inflight`; indexes must increase. */
  add(inflight: number): void {
    assert(!this.full(), 'cannot add into a full inflights');
    let next = this.start + this.count;
    if (next >= this.capacity) next -= this.capacity;
    this.buffer[next] = inflight;
    this.count++;
  }

  /** Acknowledge every in-flight message up to and including `to`. */
  freeLE(to: number): void {
    if (this.count === 0 || to < this.buffer[this.start]) return;
    let idx = this.start;
    let i = 0;
    for (; i < this.count; i++) {
      if (to < this.buffer[idx]) break;
      idx++;
      if (idx >= this.capacity) idx -= this.capacity;
    }
    this.count -= i;
    this.start = idx;
    if (this.count === 0) this.start = 0;
  }

  /** Forget the oldest in-flight message (it was probably lost), so one more can be sent. */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.buffer[this.start]);
  }

  full(): boolean {
    return this.count === this.capacity;
  }

  size(): number {
    return this.count;
  }

  reset(): void {
    this.count = 0;
    this.start = 0;
  }
}
