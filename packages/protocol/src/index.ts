export { ErrorCodes, CloseCode, ChatError, isChatError, httpStatusOf } from './errors';
export type { ErrorCode } from './errors';
export { compareIds, compareMessageIds, defaultLimits, ID_PATTERN, isValidId } from './limits';
export type { Limits } from './limits';
export { validateClientFrame, requestIdOf, MAX_LIST_CHATS } from './validate';
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
export { signToken, verifyToken } from './token';
export type { SignOptions, TokenClaims, VerifyOptions } from './token';
export type * from './frames';
