export { MediaService } from './media-service';
export type { MediaLogger, MediaServiceOptions } from './media-service';
export { MinioObjectStore } from './minio-store';
export type { MinioStoreOptions } from './minio-store';
export type { ObjectStore, PresignedPost } from './object-store';
export {
  DEFAULT_ALLOWED_TYPES,
  DEFAULT_MAX_BYTES,
  checkAttachmentRefs,
  checkDeclared,
  isTypeAllowed,
  isTypePattern,
  keyOwner,
  newObjectKey,
  normalizeMime,
} from './policy';
export type { MediaLimits, ObjectFacts, UploadPolicy } from './policy';
