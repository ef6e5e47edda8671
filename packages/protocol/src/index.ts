export { ErrorCodes, CloseCode, ChatError, isChatError, httpStatusOf } from './errors';
export type { ErrorCode } from './errors';
export { compareIds, compareMessageIds, defaultLimits, ID_PATTERN, isValidId } from './limits';
export type { Limits } from './limits';
export { validateClientFrame, requestIdOf, MAX_LIST_CHATS } from './validate';
export { MAX_PUSH_ENDPOINT_CHARS, isVapidPublicKey, validatePushTarget } from './push-target';
export type { PushPayload } from './push-payload';
export { readPushPayload } from './push-payload';
export {
  jsonCodec,
  msgpackCodec,
  codecs,
  codecFor,
  decodeClientFrame,
  JSON_SUBPROTOCOL,
  MSGPACK_SUBPROTOCOL,
} from './codec';
export type { Codec, Subprotocol, WireData } from './codec';
export { FEATURES, FEATURES_PARAM, parseFeatures } from './features';
export type { Feature } from './features';
export { Backoff, backoffCeiling, backoffDelay } from './backoff';
export type { BackoffPolicy, Jitter, RandomSource } from './backoff';
export { signToken, verifyToken } from './token';
export type { SignOptions, TokenClaims, VerifyOptions } from './token';
export type * from './frames';
