/**
 * A single member releases WAL segments below its applied index as it goes (every 10 000
 * entries). The member's identity (metadata record) and Raft state were written only at
 * the start of the first segment, so once that segment was released a restart found no
 * metadata (and no hard state: the term went backwards) and started as a brand-new member
 * on old data. Every segment now begins with the records in force. Here: more than one 64 MiB segment of writes, the first segment
 * released, a restart, and the member is the same member with the same data.
 *
 *   npx vitest run test/e2e/wal-release.test.ts     (needs `npm run build`)
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { etcdctl, startCairn, type ServerProc } from '../../bench/lib/procs';
import { grpcClient, pool, put } from '../helpers/watch-client';

const KEYS = 12_000;
const VALUE = Buffer.alloc(6 * 1024, 0x77); // 12 000 x 6 KiB: about 72 MiB of WAL

let srv: ServerProc | undefined;
afterAll(async () => {
  await srv?.stop();
});

const walSegments = (dataDir: string): string[] => readdirSync(join(dataDir, 'member', 'wal')).filter((n) => n.endsWith('.wal')).sort();

async function status(endpoint: string): Promise<{ member: string; cluster: string; revision: number; term: number }> {
  const r = await etcdctl(endpoint, ['endpoint', 'status', '-w', 'json']);
  expect(r.code, r.stderr).toBe(0);
  const s = JSON.parse(r.stdout)[0].Status;
  return { member: String(s.header.member_id), cluster: String(s.header.cluster_id), revision: Number(s.header.revision), term: Number(s.raftTerm) };
}

describe('WAL segments released by a single member', () => {
  it('a restart after the first segment was released finds the same member and data', async () => {
    srv = await startCairn();
    const first = walSegments(srv.dataDir)[0];
    const client = grpcClient(srv.endpoint);
    await pool(Array.from({ length: KEYS }, (_, i) => i), 32, (i) => put(client, `rel/${String(i).padStart(5, '0')}`, VALUE));
    client.close();
    // The release runs after the apply that crossed 10 000 entries; give it a moment.
    const deadline = Date.now() + 10_000;
    while (walSegments(srv.dataDir).includes(first) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(walSegments(srv.dataDir), 'the first segment was released').not.toContain(first);
    const before = await status(srv.endpoint);
    await srv.restart();
    const after = await status(srv.endpoint);
    expect(after.member).toBe(before.member);
    expect(after.cluster).toBe(before.cluster);
    expect(after.revision).toBe(before.revision);
    // Each start of a single member is a new term; the hard state that says which term
    // it was in lived in the released segment, and the term went back to 2.
    expect(after.term).toBe(before.term + 1);
    const got = await etcdctl(srv.endpoint, ['get', 'rel/', '--prefix', '--keys-only', '-w', 'json']);
    expect(JSON.parse(got.stdout).count).toBe(KEYS);
    expect((await etcdctl(srv.endpoint, ['put', 'after', 'restart'])).code).toBe(0);
  });
});
