// The membership configuration in force on this node and the leader's per-member
// Progress. Iteration is always in ascending ID order so that a seeded run sends
// the same messages in the same order every time.

import { assert } from './assert';
import { Progress } from './progress';
import { VoteResult, committedIndex, voteResult } from './quorum';
import type { ConfState, NodeId } from './types';

export interface TrackerConfig {
  voters: Set<NodeId>;
  learners: Set<NodeId>;
}

export function sortIds(ids: Iterable<NodeId>): NodeId[] {
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export class ProgressTracker {
  config: TrackerConfig = { voters: new Set(), learners: new Set() };
  progress = new Map<NodeId, Progress>();
  /** Votes received in the current (pre-)election. */
  votes = new Map<NodeId, boolean>();
  private sortedIds: NodeId[] = [];

  constructor(readonly maxInflight: number) {}

  /** Install a configuration and its progress map (after a conf change or a snapshot). */
  setConfig(config: TrackerConfig, progress: Map<NodeId, Progress>): void {
    for (const id of config.voters) assert(!config.learners.has(id), () => `${id} is both voter and learner`);
    for (const id of [...config.voters, ...config.learners])
      assert(progress.has(id), () => `no progress for member ${id}`);
    assert(progress.size === config.voters.size + config.learners.size, 'progress for a non-member');
    this.config = config;
    this.progress = progress;
    this.sortedIds = sortIds(progress.keys());
  }

  /** Every member (voters then learners mixed), ascending by ID. */
  ids(): readonly NodeId[] {
    return this.sortedIds;
  }

  votersSorted(): NodeId[] {
    return sortIds(this.config.voters);
  }

  confState(): ConfState {
    return { voters: sortIds(this.config.voters), learners: sortIds(this.config.learners) };
  }

  isSingleton(): boolean {
    return this.config.voters.size === 1;
  }

  /** The largest index matched by a quorum of voters. */
  committed(): number {
    return committedIndex(this.config.voters, (id) => this.progress.get(id)?.match);
  }

  /** Whether a quorum of voters was heard from recently (check-quorum). */
  quorumActive(): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const [id, pr] of this.progress) {
      if (!pr.isLearner) votes.set(id, pr.recentActive);
    }
    return voteResult(this.config.voters, votes) === VoteResult.Won;
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  /** The first vote of a member counts; later ones (duplicates) are ignored. */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.config.voters) {
      const v = this.votes.get(id);
      if (v === undefined) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: voteResult(this.config.voters, this.votes) };
  }
}
