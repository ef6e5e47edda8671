/**
 * Presigned uploads and downloads (docs/protocol.md 8.11 "Media"). Media bytes never pass through
 * a chat node: the node hands out a presigned POST for a fresh key under the sender's prefix,
 * checks an attachment against storage before a message may carry it, and hands out short
 * presigned GETs to chat members. Who is a member is the caller's business (the store knows).
 */
import { randomBytes } from 'node:crypto';
import type { AttachmentRef, OkFields } from '@chat/protocol';
import { ChatError } from '@chat/protocol';
import type { ObjectStore } from './object-store';
import type { MediaLimits } from './policy';
import {
  checkAttachmentRefs,
  checkDeclared,
  checkUploaded,
  keyOwner,
  newObjectKey,
} from './policy';

/** The subset of a pino logger media uses. */
export interface MediaLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface MediaServiceOptions {
  readonly bucket: string;
  /** Lifetime of presigned upload and download URLs, seconds (default 900). */
  readonly urlTtlSec?: number;
  readonly limits: MediaLimits;
  /** Objects are deleted this many days after upload, where the store supports lifecycle rules (default 30). */
  readonly expiryDays?: number;
  readonly now?: () => number;
  readonly randomBytes?: (size: number) => Uint8Array;
  readonly logger?: MediaLogger;
}

const silent: MediaLogger = { info: () => undefined, warn: () => undefined };

/**
 * @example
 * const media = new MediaService(new MinioObjectStore(opts), { bucket: 'chat-media', limits });
 * await media.start();
 * const target = await media.uploadTarget('alice', 'image/png', 1024);
 */
export class MediaService {
  private readonly options: Readonly<Required<MediaServiceOptions>>;
  private bucketReady: Promise<void> | undefined;

  constructor(
    private readonly store: ObjectStore,
    options: MediaServiceOptions,
  ) {
    this.options = Object.freeze({
      bucket: options.bucket,
      urlTtlSec: options.urlTtlSec ?? 900,
      limits: Object.freeze({
        maxBytes: options.limits.maxBytes,
        allowedTypes: Object.freeze([...options.limits.allowedTypes]),
      }),
      expiryDays: options.expiryDays ?? 30,
      now: options.now ?? Date.now,
      randomBytes: options.randomBytes ?? ((n: number) => randomBytes(n)),
      logger: options.logger ?? silent,
    });
  }

  get limits(): MediaLimits {
    return this.options.limits;
  }

  /**
   * Makes sure the bucket exists and carries the expiry rule. Never rejects: when storage is
   * down the node still serves text chat, and the bucket is ensured again on the next upload.
   */
  async start(): Promise<void> {
    try {
      await this.ensureBucket();
    } catch (err) {
      this.options.logger.warn(
        { err },
        'object storage unavailable at start; media requests will fail until it is back',
      );
    }
  }

  /** A presigned POST for a fresh key under `userId`'s prefix, bound to this type and size. */
  async uploadTarget(
    userId: string,
    mime: string,
    size: number,
  ): Promise<OkFields['uploadTarget']> {
    const contentType = checkDeclared(mime, size, this.options.limits);
    // Presigning is local computation: without this round trip a client would get a URL for
    // storage that is down and learn it only from the upload.
    await this.ensureBucket();
    await this.store.probe();
    const key = newObjectKey(userId, this.options.randomBytes(18));
    const expiresAt = this.options.now() + this.options.urlTtlSec * 1000;
    const post = await this.store.presignPost({
      bucket: this.options.bucket,
      key,
      contentType,
      size,
      expiresAt: new Date(expiresAt),
    });
    return { key, url: post.url, fields: { ...post.fields }, expiresAt };
  }

  /** A presigned GET. The caller must have checked that the user may read `key`. */
  async downloadUrl(key: string): Promise<OkFields['downloadUrl']> {
    if (keyOwner(key) === undefined) throw new ChatError('NOT_FOUND', 'no such attachment');
    const now = this.options.now();
    const url = await this.store.presignGet(key, this.options.urlTtlSec, new Date(now));
    return { url, expiresAt: now + this.options.urlTtlSec * 1000 };
  }

  /**
   * Checks attachments before a message may carry them: issued to `userId`, allowed type and
   * size, uploaded with exactly that size and type. Returns them with normalized types.
   * BAD_REQUEST / TOO_LARGE / NOT_FOUND for the first bad one, UNAVAILABLE when storage is.
   */
  async verifyAttachments(
    userId: string,
    refs: readonly AttachmentRef[],
  ): Promise<AttachmentRef[]> {
    const checked = checkAttachmentRefs(userId, refs, this.options.limits);
    const facts = await Promise.all(checked.map((ref) => this.store.stat(ref.key)));
    checked.forEach((ref, i) => {
      const found = facts[i];
      if (found === null || found === undefined) {
        throw new ChatError('NOT_FOUND', 'attachment was not uploaded', { key: ref.key });
      }
      checkUploaded(ref, found);
    });
    return checked;
  }

  /**
   * Deletes attachment objects (retention: their messages are gone). UNAVAILABLE when storage
   * is; already deleted keys are fine.
   */
  removeObjects(keys: readonly string[]): Promise<void> {
    return this.store.remove(keys);
  }

  private ensureBucket(): Promise<void> {
    this.bucketReady ??= (async () => {
      const created = await this.store.ensureBucket();
      if (created) this.options.logger.info({ bucket: this.options.bucket }, 'bucket created');
      try {
        await this.store.setExpiryDays(this.options.expiryDays);
      } catch (err) {
        // Local S3 servers (s3rver) have no lifecycle rules; MinIO and S3 do.
        this.options.logger.warn(
          { bucket: this.options.bucket, cause: err instanceof Error ? err.message : String(err) },
          `could not set the ${this.options.expiryDays}-day expiry rule; objects will not expire by themselves`,
        );
      }
    })();
    const ready = this.bucketReady;
    ready.catch(() => {
      if (this.bucketReady === ready) this.bucketReady = undefined;
    });
    return ready;
  }
}
