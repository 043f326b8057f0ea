// Raft core throughput: committed entries per second for a 3-node in-process cluster
// (MemoryStorage, no disk, messages handed over in-process, proposals batched), and
// heap allocation per committed entry.
//
//   npm run bench:raft
//   node dist/bench/raft/throughput.js [entries=2000000] [batch=256] [payloadBytes=128]
//
// The process re-executes itself with --expose-gc and a large young generation so
// that allocation can be measured in GC-free windows (heapUsed delta after a full GC).

import { spawnSync } from 'node:child_process';
import {
  EntryType,
  MemoryStorage,
  type Message,
  RawNode,
  SeededRandom,
  StateType,
  decodeConfChange,
  type ConfState,
  type NodeId,
} from '../../src/raft';

type Gc = () => void;
const gc = (globalThis as { gc?: Gc }).gc;

if (gc === undefined) {
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', '--min-semi-space-size=64', '--max-semi-space-size=64', __filename, ...process.argv.slice(2)],
    { stdio: 'inherit' },
  );
  process.exit(r.status ?? 1);
}

const totalEntries = Number(process.argv[2] ?? 2_000_000);
const batchSize = Number(process.argv[3] ?? 256);
const payloadBytes = Number(process.argv[4] ?? 128);
/** Compact every node's log after this many applied entries, keeping memory bounded. */
const compactEvery = 20_000;
/** Entries kept below the snapshot for slow followers. */
const compactKeep = 1_000;

class BenchNode {
  applied = 0;
  confState: ConfState = { voters: [], learners: [] };
  readonly node: RawNode;
  readonly storage = new MemoryStorage();
  constructor(readonly id: NodeId) {
    this.node = new RawNode({
      id,
      electionTick: 10,
      heartbeatTick: 1,
      storage: this.storage,
      random: new SeededRandom(Number(id)),
      maxSizePerMsg: 1024 * 1024,
      maxInflightMsgs: 256,
      checkQuorum: true,
      preVote: true,
    });
  }
}

const peers: NodeId[] = [1n, 2n, 3n];
const nodes = new Map<NodeId, BenchNode>();
for (const id of peers) {
  const n = new BenchNode(id);
  n.node.bootstrap(peers);
  nodes.set(id, n);
}
let inbox: Message[] = [];
let committedNormal = 0;

function handleReady(n: BenchNode, leaderId: NodeId): void {
  const rd = n.node.ready();
  if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
  if (rd.entries.length > 0) n.storage.append(rd.entries);
  if (rd.hardState) n.storage.setHardState(rd.hardState);
  for (const m of rd.messages) inbox.push(m);
  const ents = rd.committedEntries;
  for (let i = 0; i < ents.length; i++) {
    const e = ents[i];
    if (e.type === EntryType.ConfChange) n.confState = n.node.applyConfChange(decodeConfChange(e.data));
    else if (n.id === leaderId && e.data.byteLength > 0) committedNormal++;
    n.applied = e.index;
  }
  n.node.advance(rd);
  if (n.applied - (n.storage.firstIndex() - 1) > compactEvery + compactKeep) {
    n.storage.createSnapshot(n.applied, n.confState, new Uint8Array(8));
    n.storage.compact(n.applied - compactKeep);
  }
}

function pump(leaderId: NodeId): void {
  for (;;) {
    let moved = false;
    for (const n of nodes.values()) {
      while (n.node.hasReady()) {
        handleReady(n, leaderId);
        moved = true;
      }
    }
    if (inbox.length > 0) {
      const batch = inbox;
      inbox = [];
      for (const m of batch) nodes.get(m.to)!.node.step(m);
      moved = true;
    }
    if (!moved) return;
  }
}

// Elect node 1.
pump(0n);
nodes.get(1n)!.node.campaign();
pump(1n);
const leader = nodes.get(1n)!;
if (leader.node.raft.state !== StateType.Leader) throw new Error('node 1 did not become leader');

const payloads: Uint8Array[] = [];
for (let i = 0; i < batchSize; i++) payloads.push(new Uint8Array(payloadBytes).fill(i & 0xff));

/** Propose `count` entries in batches, pumping after each batch; returns entries committed. */
function run(count: number): number {
  const start = committedNormal;
  let proposed = 0;
  while (proposed < count) {
    // Fresh arrays: proposals of a real server are new buffers too.
    leader.node.proposeBatch(payloads.slice());
    proposed += batchSize;
    pump(1n);
  }
  return committedNormal - start;
}

// Warm up the JIT.
run(20_000);

// Throughput.
gc();
const t0 = process.hrtime.bigint();
const committed = run(totalEntries);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;

// Allocation per committed entry, in windows short enough to stay inside the young
// generation (no scavenge), after a full GC.
const windowEntries = Math.max(2048, 4 * batchSize);
const perEntry: number[] = [];
for (let w = 0; w < 30; w++) {
  gc();
  const before = process.memoryUsage().heapUsed;
  const c = run(windowEntries);
  const after = process.memoryUsage().heapUsed;
  if (after > before && c > 0) perEntry.push((after - before) / c);
}
perEntry.sort((a, b) => a - b);
const median = perEntry.length > 0 ? perEntry[Math.floor(perEntry.length / 2)] : NaN;
gc();
const retainedMb = process.memoryUsage().heapUsed / (1024 * 1024);

console.log(`raft throughput: 3 nodes in-process, MemoryStorage, no disk, payload ${payloadBytes} B, batch ${batchSize}`);
console.log(`  committed entries/s:          ${Math.round(committed / seconds).toLocaleString('en-US')} (${committed} entries in ${seconds.toFixed(2)} s)`);
console.log(`  allocation per committed entry: ${Math.round(median)} B (median of ${perEntry.length} GC-free windows of ${windowEntries} entries, all 3 nodes)`);
console.log(`  heap after run and full GC:   ${retainedMb.toFixed(1)} MB (logs compacted every ${compactEvery} entries)`);
