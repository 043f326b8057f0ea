// Membership changes, one node at a time.
//
// A change takes effect on a node when that node applies the committed ConfChange entry
// (the caller calls RawNode.applyConfChange). cairn does not implement joint consensus;
// single-node changes are safe under these rules, all enforced in raft.ts:
//
// 1. Any two configurations that differ by one voter have intersecting majorities
//    (§4.1 of Ongaro's dissertation), so while some nodes use C and others C', no two
//    leaders can be elected in one term and no two different entries can both commit
//    at one index.
// 2. At most one change is in flight: the leader replaces a ConfChange proposal with
//    an empty normal entry while pendingConfIndex > applied, i.e. while an earlier
//    change is not yet applied on the leader. Hence at most two adjacent
//    configurations are in use at any time.
// 3. A new leader sets pendingConfIndex to its last index, so it proposes no change
//    before it has committed and applied an entry of its own term. This is the fix for
//    the single-server change bug found by Ongaro (raft-dev, 2015): a leader of an
//    older configuration could otherwise commit a change that is not based on the
//    latest committed one.
// 4. A node does not campaign while its log has a committed but unapplied ConfChange,
//    so it never counts votes with a configuration it is about to leave.
//
// An invalid change (removing the last voter) is a deterministic no-op on every node,
// because every node applies it with the same configuration (rule 2).

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
