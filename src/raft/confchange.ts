// Membership changes, one node at a time.
//
// A change takes effect on a node when that node applies the committed ConfChange entry
// (the caller calls RawNode.applyConfChange while applying it, before advance()).
// cairn does not implement joint consensus. Apply-time activation of single-node
// changes is known to be subtle (etcd-io/etcd#7280, #7625); it is safe here because of
// these rules, all enforced in raft.ts:
//
// 1. Two configurations that differ by one voter have intersecting majorities
//    (§4.1 of Ongaro's dissertation).
// 2. One change at a time: the leader replaces a ConfChange proposal with an empty
//    normal entry while pendingConfIndex > applied. So a change j is only proposed by
//    a leader that has applied the previous change i, and j commits under C(i).
// 3. A new leader sets pendingConfIndex to its last index: it proposes no change
//    before it has applied everything in its log when elected (this is the fix for
//    the single-server bug Ongaro reported on raft-dev in 2015).
// 4. A node does not campaign while its log has a committed but unapplied ConfChange.
//
// Why at most two adjacent configurations can count votes or commits: a candidate that
// wins must hold every committed entry (§5.4), so if change j is committed it holds j.
// j reached it in an append whose commit field was the sender's commit index, which is
// >= i on every node holding j (by rule 2 the proposer had applied i; commit indexes
// are carried with entries and persisted with them). So the candidate knows i is
// committed and by rule 4 has applied it: it counts with C(i) or later, never with the
// configuration before i. Rule 1 then makes C(i) and C(j) majorities intersect.
//
// An invalid change (removing the last voter) is a deterministic no-op on every node,
// because every node applies it in the same configuration (rule 2).

import { Progress } from './progress';
import type { TrackerConfig } from './tracker';
import { type ConfChange, ConfChangeType, type ConfState, type NodeId, None } from './types';

export interface ChangeResult {
  config: TrackerConfig;
  progress: Map<NodeId, Progress>;
}

function cloneProgress(src: Map<NodeId, Progress>): Map<NodeId, Progress> {
  return new Map(src);
}

/** Why a change cannot be applied to `config`, or null if it can. */
export function validateConfChange(config: TrackerConfig, cc: ConfChange): string | null {
  if (cc.nodeId === None) return 'conf change with node id 0';
  if (cc.type === ConfChangeType.RemoveNode || cc.type === ConfChangeType.AddLearnerNode) {
    if (config.voters.has(cc.nodeId) && config.voters.size === 1) return 'removed all voters';
  }
  return null;
}

/**
 * The configuration after applying `cc`. A new member starts in Probe with next =
 * lastIndex (so the first probe is cheap) and counts as recently active, so that the
 * leader does not step down for check-quorum right after adding it.
 */
export function applyChange(
  config: TrackerConfig,
  progress: Map<NodeId, Progress>,
  cc: ConfChange,
  lastIndex: number,
  maxInflight: number,
): ChangeResult {
  const voters = new Set(config.voters);
  const learners = new Set(config.learners);
  const prs = cloneProgress(progress);
  const id = cc.nodeId;
  const init = (isLearner: boolean): void => {
    const pr = new Progress(Math.max(lastIndex, 1), maxInflight, isLearner);
    pr.recentActive = true;
    prs.set(id, pr);
  };
  switch (cc.type) {
    case ConfChangeType.AddNode: {
      if (voters.has(id)) break;
      voters.add(id);
      learners.delete(id);
      const pr = prs.get(id);
      if (pr) pr.isLearner = false; // promotion keeps the replication progress
      else init(false);
      break;
    }
    case ConfChangeType.AddLearnerNode: {
      if (learners.has(id)) break;
      learners.add(id);
      voters.delete(id);
      const pr = prs.get(id);
      if (pr) pr.isLearner = true;
      else init(true);
      break;
    }
    case ConfChangeType.RemoveNode:
      voters.delete(id);
      learners.delete(id);
      prs.delete(id);
      break;
  }
  return { config: { voters, learners }, progress: prs };
}

/** The configuration described by a ConfState (at startup or from a snapshot). */
export function restoreConfig(cs: ConfState, lastIndex: number, maxInflight: number): ChangeResult {
  let result: ChangeResult = { config: { voters: new Set(), learners: new Set() }, progress: new Map() };
  for (const id of cs.voters) {
    result = applyChange(result.config, result.progress, { type: ConfChangeType.AddNode, nodeId: id, context: new Uint8Array(0) }, lastIndex, maxInflight);
  }
  for (const id of cs.learners) {
    result = applyChange(result.config, result.progress, { type: ConfChangeType.AddLearnerNode, nodeId: id, context: new Uint8Array(0) }, lastIndex, maxInflight);
  }
  return result;
}
