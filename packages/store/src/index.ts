export { DEFAULT_ORPHAN_WINDOW_MS, PgChatStore } from './pg-store';
export type { PgChatStoreOptions, SendBatchInfo, SendStats } from './pg-store';
export type { DeviceConnectStats } from './device-connect';
export { MOVING_FRESH_MS } from './device-connect';
export { LOCK_SPACE } from './key-locks';
export { SINGLE_SHARD_SETTINGS } from './shard-router';
export { detectEngine, userShardCount } from './citus';
export type { StorageEngine } from './citus';
export { createDatabase } from './pool';
export { databaseTlsProblem } from './database-url';
export type { DatabaseOptions, RawQuery, StoreLogger } from './pool';
export {
  StoreEpochChangedError,
  newStoreEpoch,
  readStoreEpoch,
  readStoreEpochWith,
} from './store-epoch';
export { migrate, migrations } from './migrations';
export { PgAttachmentStore } from './attachment-store';
export type { AttachmentAccess, AttachmentStore } from './attachment-store';
export { toChatError, isUnavailableError } from './errors';
export type { Database } from './schema';
export type {
  ChatStore,
  Delivery,
  DeviceCursor,
  DeviceOptions,
  DeviceState,
  MembershipResult,
  ReceiptMark,
  SendInput,
  SendResult,
  SyncPage,
} from './types';
export type { BatchInfo } from './batch-queue';
export { PgGroupStore } from './group-store';
export type { ChangeStore, GroupStoreOptions, ListChatsOptions, ChatPage } from './group-store';
export { PgPresenceStore } from './presence-store';
export type { LastSeenFacts } from './presence-store';
export { MAX_BLOCKS_PER_USER, PgPrivacyStore } from './privacy-store';
export { PgReceiptStore } from './receipt-store';
export type { DeliveredMark, ReadIntent, ReadBatchResult, ReceiptNotice } from './receipt-store';
export { MAX_BADGE, PgPushStore } from './push-store';
export type { ClaimedPush, OutboxStats, PushIntent, PushRecipient } from './push-store';
export { PgRetentionStore } from './retention-store';
export { databaseTime } from './database-time';
export type { ReleasedAttachments } from './attachment-release';
export type {
  DeliveredBatch,
  ExpiredDevices,
  ExpiredMessages,
  RetentionStore,
} from './retention-store';
