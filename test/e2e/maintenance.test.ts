import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerProc, etcdctl, makeTempDir, startCairn } from '../../bench/lib/procs';

// Maintenance and Cluster services through etcd's etcdctl.

let server: ServerProc;
beforeAll(async () => {
  server = await startCairn({ extraArgs: ['--quota-backend-bytes', '300000'] });
});
afterAll(async () => {
  await server?.stop();
});

// etcdctl dials each endpoint itself for endpoint status/hashkv and defrag and sends the
// endpoint, scheme included, as the HTTP/2 :authority: cairn must accept that as etcd does.
const ctl = async (...args: string[]): Promise<string> => {
  const r = await etcdctl(server.endpoint, args);
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
};

describe('Maintenance and Cluster through etcdctl', () => {
  it('endpoint status reports this member as leader with its raft index and db size', async () => {
    await ctl('put', 'status-key', 'v');
    const status = JSON.parse(await ctl('endpoint', 'status', '-w', 'json'))[0].Status;
    expect(status.version).toBe('3.4.0');
    expect(status.leader).toBe(status.header.member_id);
    expect(status.raftIndex).toBeGreaterThan(0);
    expect(status.raftAppliedIndex).toBe(status.raftIndex);
    expect(status.dbSize).toBeGreaterThan(0);
  });

  it('member list shows the one member with its URLs', async () => {
    const out = await ctl('member', 'list');
    expect(out.trim()).toMatch(new RegExp(`^[0-9a-f]+, started, default, http://127\\.0\\.0\\.1:${server.peerPort}, ${server.endpoint}, false$`));
  });

  it('hashkv is stable across a restart and changes with a write', async () => {
    const hashOf = async (): Promise<number> => JSON.parse(await ctl('endpoint', 'hashkv', '-w', 'json'))[0].HashKV.hash;
    const before = await hashOf();
    await server.restart();
    expect(await hashOf()).toBe(before);
    await ctl('put', 'hash-key', 'v');
    expect(await hashOf()).not.toBe(before);
  });

  it('snapshot save writes a stream ending with the sha256 of what precedes it', async () => {
    const dir = makeTempDir('snap');
    const file = join(dir, 'snap.db');
    const out = await ctl('snapshot', 'save', file);
    expect(out).toContain(`Snapshot saved at ${file}`);
    const bytes = readFileSync(file);
    expect(bytes.length % 512).toBe(32);
    const body = bytes.subarray(0, bytes.length - 32);
    expect(createHash('sha256').update(body).digest().equals(bytes.subarray(bytes.length - 32))).toBe(true);
    expect(body.subarray(0, 9).toString('latin1')).toBe('CAIRNSNAP');
    expect(body.includes(Buffer.from('status-key'))).toBe(true);
  });

  it('defrag succeeds', async () => {
    expect(await ctl('defrag')).toContain('Finished defragmenting etcd member');
  });

  it('a write past the quota raises NOSPACE: writes are refused until the alarm is disarmed', async () => {
    const value = 'x'.repeat(20_000);
    let refused: { code: number; stderr: string } | undefined;
    for (let i = 0; i < 40 && refused === undefined; i++) {
      const r = await etcdctl(server.endpoint, ['put', `fill/${i}`, value]);
      if (r.code !== 0) refused = r;
    }
    expect(refused?.stderr).toContain('etcdserver: mvcc: database space exceeded');
    expect(await ctl('alarm', 'list')).toMatch(/alarm:NOSPACE/);
    const small = await etcdctl(server.endpoint, ['put', 'small', 'v']);
    expect(small.code).not.toBe(0);
    expect(small.stderr).toContain('database space exceeded');
    // Deletes and compaction still work, so an operator can make room.
    expect(await ctl('del', 'fill/', '--prefix')).toMatch(/^\d+/);
    const rev = JSON.parse(await ctl('get', 'small', '-w', 'json')).header.revision;
    await ctl('compaction', '--physical', String(rev));
    await ctl('alarm', 'disarm');
    expect((await ctl('alarm', 'list')).trim()).toBe('');
    expect((await ctl('put', 'small', 'v')).trim()).toBe('OK');
  });
});
