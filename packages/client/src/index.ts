export { ChatClient } from './client';
export type { SendOptions } from './client';
export type { ChatClientEvents, ConnectionState, ConnectionStatus } from './client-events';
export type {
  ChatClientOptions,
  Clock,
  Logger,
  ReconnectOptions,
  TimerHandle,
  TokenSource,
} from './options';
export { browserPageSignals } from './page-signals';
export type { PageSignals } from './page-signals';
export type { SendResult } from './outbox';
export { MemoryOutboxStore } from './outbox-store';
export type { OutboxStore, PendingSend } from './outbox-store';
export type { Disposer, Listener } from './typed-events';
export type { WebSocketConstructor, WebSocketLike } from './transport';
export type { FetchLike, Route } from './route';
export { ConnectionError } from './errors';
export { backoffDelay, backoffCeiling } from './backoff';
export type { BackoffSettings, RandomSource } from './backoff';
export { postUpload, toBlob } from './media';
export type { UploadData, UploadFetch, UploadForm } from './media';
// What apps handle from the protocol, so that they need no import of @chat/protocol of their own.
export { ChatError, CloseCode, ErrorCodes, isChatError } from '@chat/protocol';
export type {
  AttachmentRef,
  ChatEvent,
  ChatSummary,
  ErrorCode,
  EventFrame,
  LastSeenVisibility,
  MessageEvent,
  MovedFrame,
  PushTargetSpec,
  ReceiptEvent,
  ReceiptsFrame,
  TypingNotice,
  WelcomeFrame,
} from '@chat/protocol';
