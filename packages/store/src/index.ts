export { PgChatStore } from './pg-store';
export type { PgChatStoreOptions, SendStats } from './pg-store';
export { createDatabase } from './pool';
export type { DatabaseOptions, StoreLogger } from './pool';
export { migrate, migrations } from './migrations';
export { toChatError, isUnavailableError } from './errors';
export type { Database } from './schema';
export type {
  ChatStore,
  Delivery,
  DeviceCursor,
  DeviceState,
  MembershipResult,
  SendInput,
  SendResult,
  SyncPage,
} from './types';
