export { defineMethod } from './method';
export type { Method, RequestOf, ResponseOf } from './method';
export { RpcServer } from './server';
export type { RpcServerOptions, Handler, PeerInfo } from './server';
export { PeerClient, defaultBackoff } from './client';
export type { PeerClientOptions, CallOptions, PeerStats } from './client';
export { PeerPool, parseAddress } from './pool';
export { channelBinding } from './transport';
export type { RpcTls } from './transport';
export { NONCE_BYTES, handshakeProof, verifyHandshakeProof } from './handshake';
export type { HandshakeRole, HandshakeTranscript } from './handshake';
export type { PeerPoolOptions, PeerAddress } from './pool';
export { DeliveryBatcher } from './batcher';
export type { DeliveryBatcherOptions, BatchSender, BatchResultListener } from './batcher';
export {
  FrameDecoder,
  FrameError,
  encodeFrame,
  frameChecksum,
  createPackr,
  DEFAULT_MAX_FRAME_BYTES,
} from './frame';
export { realTimers } from './logger';
export type { RpcLogger, Timers } from './logger';
