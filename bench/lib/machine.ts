/** Facts about the machine and CPU accounting for benchmark reports (Linux /proc). */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { ETCD_BIN } from './procs';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memGiB: number;
  kernel: string;
  node: string;
  etcdVersion: string;
  tmpdir: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  let etcdVersion = 'unknown';
  try {
    const out = execFileSync(ETCD_BIN, ['--version'], { encoding: 'utf8', timeout: 5_000 });
    etcdVersion = /etcd Version:\s*(\S+)/.exec(out)?.[1] ?? out.split('\n')[0];
  } catch {
    // report unknown
  }
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    etcdVersion,
    tmpdir: os.tmpdir(),
  };
}

/** Clock ticks per second for /proc/<pid>/stat (USER_HZ; 100 on every mainstream Linux build). */
const USER_HZ = 100;

/** CPU time (user + system, all threads) consumed so far by a process, in ms; NaN when unreadable. */
export function processCpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name (which may contain spaces).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]); // field 14
    const stime = Number(rest[12]); // field 15
    return ((utime + stime) * 1000) / USER_HZ;
  } catch {
    return NaN;
  }
}

/**
 * Time the threads of a process have spent runnable but waiting for a CPU (the run queue),
 * summed over its live threads, in ms; NaN when unreadable (/proc/<pid>/task/<tid>/schedstat,
 * second field, ns). A thread that exits takes its share with it. On a saturated machine
 * this is where latency goes that neither side's code shows: a single-threaded server
 * stops entirely while its thread waits.
 */
export function processRunQueueWaitMs(pid: number): number {
  try {
    let ns = 0;
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[1]);
      } catch {
        // the thread ended between the listing and the read
      }
    }
    return ns / 1e6;
  } catch {
    return NaN;
  }
}

/** CPU time of this process (all threads, worker_threads included), in ms. */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Busy and total CPU time of the whole machine so far, in ms (all cores summed); NaN when unreadable. */
export function machineCpuMs(): { busyMs: number; totalMs: number } {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = f[3] + f[4];
    return { busyMs: ((total - idle) * 1000) / USER_HZ, totalMs: (total * 1000) / USER_HZ };
  } catch {
    return { busyMs: NaN, totalMs: NaN };
  }
}

/** The commit being measured, with "-dirty" when the working tree has changes. */
export function gitDescribe(cwd: string): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd, encoding: 'utf8' }).trim();
    return dirty === '' ? head : `${head}-dirty`;
  } catch {
    return 'unknown';
  }
}
