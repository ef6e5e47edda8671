/**
 * The node's side of media: the object-storage service plus the store's "who may read this
 * key" answer, behind one interface the request handlers use. Without object storage
 * configured, every media request gets a clear BAD_REQUEST and text chat is unaffected.
 */
import type { AttachmentRef, OkFields } from '@chat/protocol';
import { ChatError } from '@chat/protocol';
import { MediaService, MinioObjectStore, keyOwner } from '@chat/media';
import { PgAttachmentStore } from '@chat/store';
import type { AttachmentStore, createDatabase } from '@chat/store';
import type { Logger } from 'pino';
import type { MediaConfig } from './media-config';

export interface MediaGateway {
  uploadTarget(user: string, mime: string, size: number): Promise<OkFields['uploadTarget']>;
  /**
   * NOT_FOUND for a key no message carries, NOT_MEMBER for one only other chats carry. Notes
   * that the device fetched it: the object is kept until every recipient device has.
   */
  downloadUrl(user: string, device: string, key: string): Promise<OkFields['downloadUrl']>;
  /** Checks the attachments of a send; resolves with them normalized. */
  verifyAttachments(user: string, refs: readonly AttachmentRef[]): Promise<AttachmentRef[]>;
}

function notConfigured(): never {
  throw new ChatError('BAD_REQUEST', 'media attachments are not configured on this node');
}

export const mediaNotConfigured: MediaGateway = Object.freeze({
  uploadTarget: async () => notConfigured(),
  downloadUrl: async () => notConfigured(),
  verifyAttachments: async () => notConfigured(),
});

/**
 * @example
 * const media = mediaGateway(new MediaService(objectStore, options), new PgAttachmentStore(db), Date.now);
 */
export function mediaGateway(
  service: MediaService,
  attachments: AttachmentStore,
  now: () => number,
): MediaGateway {
  return Object.freeze({
    uploadTarget: (user: string, mime: string, size: number) =>
      service.uploadTarget(user, mime, size),
    async downloadUrl(user: string, device: string, key: string) {
      if (keyOwner(key) === undefined) throw new ChatError('NOT_FOUND', 'no such attachment');
      const access = await attachments.access(user, key);
      if (access === 'unknown') throw new ChatError('NOT_FOUND', 'no such attachment');
      if (access === 'not-member') {
        throw new ChatError('NOT_MEMBER', 'not a member of a chat with this attachment');
      }
      // Noted before the URL goes out: an object is never deleted for a fetch not yet recorded.
      await attachments.recordFetch(user, device, key, now());
      return service.downloadUrl(key);
    },
    verifyAttachments: (user: string, refs: readonly AttachmentRef[]) =>
      service.verifyAttachments(user, refs),
  });
}

/**
 * Builds the gateway from configuration: the minio client, the service (bucket and expiry rule
 * ensured now if storage is up, later otherwise) and the store's attachment index.
 */
export async function startMedia(
  config: MediaConfig,
  db: ReturnType<typeof createDatabase>,
  log: Logger,
  /** Days after which the bucket's lifecycle rule deletes objects (the retention period). */
  expiryDays?: number,
  now: () => number = Date.now,
): Promise<MediaGateway & { removeObjects(keys: readonly string[]): Promise<void> }> {
  const objects = new MinioObjectStore({
    endpoint: config.endpoint,
    publicEndpoint: config.publicEndpoint,
    accessKey: config.accessKey,
    secretKey: config.secretKey,
    bucket: config.bucket,
    region: config.region,
    requestTimeoutMs: config.requestTimeoutMs,
  });
  const service = new MediaService(objects, {
    bucket: config.bucket,
    urlTtlSec: config.urlTtlSec,
    limits: { maxBytes: config.maxBytes, allowedTypes: config.allowedTypes },
    logger: log,
    ...(expiryDays === undefined ? {} : { expiryDays }),
  });
  await service.start();
  log.info(
    {
      endpoint: config.endpoint,
      publicEndpoint: config.publicEndpoint,
      bucket: config.bucket,
      urlTtlSec: config.urlTtlSec,
      maxBytes: config.maxBytes,
      allowedTypes: config.allowedTypes,
    },
    'media attachments on',
  );
  return Object.freeze({
    ...mediaGateway(service, new PgAttachmentStore(db), now),
    removeObjects: (keys: readonly string[]) => service.removeObjects(keys),
  });
}
