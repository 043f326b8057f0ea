// The benchmark's CPU accounting from /proc (bench/lib/machine.ts).

import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { processCpuMs, processRunQueueWaitMs } from '../../bench/lib/machine';

const hasSchedstat = existsSync(`/proc/${process.pid}/task/${process.pid}/schedstat`);

describe('bench CPU accounting', () => {
  it("reads a process's threads' run-queue time, which never goes back (NaN without schedstat)", () => {
    const before = processRunQueueWaitMs(process.pid);
    if (!hasSchedstat) {
      expect(before).toBeNaN();
      return;
    }
    expect(Number.isFinite(before)).toBe(true);
    expect(before).toBeGreaterThanOrEqual(0);
    const cpu0 = processCpuMs(process.pid);
    const until = Date.now() + 50;
    while (Date.now() < until); // busy: the counters can only grow
    expect(processRunQueueWaitMs(process.pid)).toBeGreaterThanOrEqual(before);
    expect(processCpuMs(process.pid)).toBeGreaterThanOrEqual(cpu0);
  });

  it('says NaN for a process that does not exist', () => {
    expect(processRunQueueWaitMs(2 ** 30)).toBeNaN();
    expect(processCpuMs(2 ** 30)).toBeNaN();
  });
});
