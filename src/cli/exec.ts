/**
 * Running a user's command as etcdctl does (Go's os/exec): stdio inherited, extra
 * environment first, and Go's error texts ("exit status 3", "signal: killed",
 * "fork/exec /x: no such file or directory", "exec: \"x\": executable file not found in $PATH").
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const GO_SIGNALS: Partial<Record<NodeJS.Signals, string>> = {
  SIGHUP: 'hangup', SIGINT: 'interrupt', SIGQUIT: 'quit', SIGILL: 'illegal instruction', SIGTRAP: 'trace/breakpoint trap',
  SIGABRT: 'aborted', SIGBUS: 'bus error', SIGFPE: 'floating point exception', SIGKILL: 'killed', SIGUSR1: 'user defined signal 1',
  SIGSEGV: 'segmentation fault', SIGUSR2: 'user defined signal 2', SIGPIPE: 'broken pipe', SIGALRM: 'alarm clock', SIGTERM: 'terminated',
};

/** exec.LookPath: the program to run, or Go's error text. */
function lookPath(file: string): { file: string } | { error: string } {
  if (file.includes('/')) return { file };
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir === '' ? '.' : dir, file);
    try {
      const st = fs.statSync(p);
      if (st.isFile() && (st.mode & 0o111) !== 0) return { file: p };
    } catch {
      // not here
    }
  }
  return { error: `exec: ${JSON.stringify(file)}: executable file not found in $PATH` };
}

/** Run argv to completion; resolves with null on success or Go's error text. */
export function runCommand(argv: string[], env: Record<string, string>): Promise<string | null> {
  const lp = lookPath(argv[0]);
  if ('error' in lp) return Promise.resolve(lp.error);
  return new Promise((resolve) => {
    const child = spawn(lp.file, argv.slice(1), { env: { ...process.env, ...env }, stdio: 'inherit', argv0: argv[0] });
    child.once('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'ENOENT' ? 'no such file or directory' : e.code === 'EACCES' ? 'permission denied' : e.message;
      resolve(`fork/exec ${lp.file}: ${why}`);
    });
    child.once('exit', (code, signal) => {
      if (signal !== null) resolve(`signal: ${GO_SIGNALS[signal] ?? signal}`);
      else resolve(code === 0 ? null : `exit status ${code ?? -1}`);
    });
  });
}
