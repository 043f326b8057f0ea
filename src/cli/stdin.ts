/** Line-at-a-time reading of stdin (Go's bufio.Reader.ReadString('\n') semantics). */
export class StdinReader {
  private buf = Buffer.alloc(0);
  private ended = false;
  private waiters: Array<() => void> = [];
  private started = false;

  private start(): void {
    if (this.started) return;
    this.started = true;
    process.stdin.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake();
    });
    process.stdin.on('end', () => {
      this.ended = true;
      this.wake();
    });
    process.stdin.on('error', () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The next line without its newline, or null at EOF before a newline (Go: err == io.EOF). */
  async readLine(): Promise<string | null> {
    this.start();
    for (;;) {
      const i = this.buf.indexOf(0x0a);
      if (i >= 0) {
        const line = this.buf.subarray(0, i + 1).toString('utf8');
        this.buf = this.buf.subarray(i + 1);
        return line;
      }
      if (this.ended) return null;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Everything left on stdin. */
  async readAll(): Promise<Buffer> {
    this.start();
    while (!this.ended) await new Promise<void>((r) => this.waiters.push(r));
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    return b;
  }

  pause(): void {
    if (this.started) process.stdin.pause();
  }
}

/**
 * Ask for a password as etcdctl (speakeasy) does: the prompt on stdout, the answer read
 * without echo when stdin is a terminal, else one line of stdin ('' at EOF).
 */
export async function askPassword(stdin: StdinReader, prompt: string): Promise<string> {
  process.stdout.write(prompt);
  if (!process.stdin.isTTY) {
    const line = await stdin.readLine();
    process.stdout.write('\n');
    return (line ?? '').replace(/\r?\n$/, '');
  }
  process.stdin.setRawMode(true);
  process.stdin.resume();
  let answer = '';
  try {
    await new Promise<void>((resolve) => {
      const onData = (d: Buffer): void => {
        for (const ch of d.toString('utf8')) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') {
            process.stdin.off('data', onData);
            return resolve();
          }
          if (ch === '\u0003') process.exit(130);
          if (ch === '\u007f') answer = answer.slice(0, -1);
          else answer += ch;
        }
      };
      process.stdin.on('data', onData);
    });
  } finally {
    process.stdin.setRawMode(false);
    process.stdin.pause();
  }
  process.stdout.write('\n');
  return answer;
}
