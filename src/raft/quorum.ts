// Majority quorums: one question each. "What index is committed?" and "did the vote
// win?". Only simple majorities: cairn changes membership one node at a time (see
// confchange.ts), so no joint quorums are ever needed.

import type { NodeId } from './types';

export enum VoteResult {
  Pending = 0,
  Lost = 1,
  Won = 2,
}

/**
 * The largest index acknowledged by a majority of `voters` (§5.3: the leader commits
 * an index once a majority has matched it). 0 if there are no voters.
 */
export function committedIndex(voters: ReadonlySet<NodeId>, acked: (id: NodeId) => number | undefined): number {
  const n = voters.size;
  if (n === 0) return 0;
  // Called on every append response: an insertion sort into a reused array allocates
  // nothing (Array#sort allocated more than anything else on a busy leader).
  const indexes = scratch;
  let k = 0;
  for (const id of voters) {
    const v = acked(id) ?? 0;
    let j = k++;
    while (j > 0 && indexes[j - 1] < v) {
      indexes[j] = indexes[j - 1];
      j--;
    }
    indexes[j] = v;
  }
  // Sorted descending, the (n/2+1)-th largest is matched by a majority.
  return indexes[Math.floor(n / 2)];
}

const scratch: number[] = [];

/** Won if a majority granted, Lost if a majority can no longer grant, else Pending. */
export function voteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.size === 0) return VoteResult.Won;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = Math.floor(voters.size / 2) + 1;
  if (granted >= q) return VoteResult.Won;
  if (granted + missing >= q) return VoteResult.Pending;
  return VoteResult.Lost;
}
