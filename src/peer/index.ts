export { PeerTransport, type ListeningAddress } from './transport';
export type { PeerHandlers } from './context';
export type { PeerStats } from './outbound';
export {
  type PeerTransportOptions,
  QUEUE_MESSAGES_MAX,
  QUEUE_BYTES_MAX,
  BATCH_BYTES_MAX,
  MESSAGE_BYTES_MAX,
  SNAPSHOT_CHUNK_BYTES,
  SNAPSHOT_METADATA_BYTES_MAX,
  SNAPSHOT_INBOX_BYTES_MAX,
  INBOUND_SNAPSHOTS_MAX,
} from './options';
export { FRAME_BYTES_MAX } from './frame';
export { PEER_PROTOCOL_VERSION } from './handshake';
export { parsePeerUrl, PeerUrlError, type Endpoint } from './url';
export { peerSockets, plainSockets, type PeerSockets, type PeerTls } from './sockets';
