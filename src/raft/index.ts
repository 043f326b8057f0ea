// Public surface of the Raft core. See rawnode.ts for how a server drives it.
export * from './types';
export * from './errors';
export { AssertionError } from './assert';
export { type RandomSource, SeededRandom } from './rand';
export { type Storage, type InitialState, MemoryStorage } from './storage';
export {
  type Config,
  Raft,
  defaultMaxInflightMsgs,
  defaultMaxSizePerMsg,
  defaultMaxUncommittedEntriesSize,
} from './raft';
export { RawNode, type Ready, type Status, SnapshotStatus } from './rawnode';
export { Progress, ProgressState } from './progress';
export {
  codecVersion,
  DecodeError,
  encodeEntry,
  decodeEntry,
  encodeHardState,
  decodeHardState,
  encodeConfChange,
  decodeConfChange,
  encodeSnapshot,
  decodeSnapshot,
  encodeMessage,
  decodeMessage,
} from './codec';
export { noLimit } from './util';
