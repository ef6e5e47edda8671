/**
 * ObjectStore over the official `minio` client: MinIO, AWS S3 and other S3-compatible stores.
 * Every call has a deadline; failures become ChatError UNAVAILABLE (the node's callers retry).
 */
import { ChatError, isChatError } from '@chat/protocol';
import { Client } from 'minio';
import type { ObjectStore, PresignedPost } from './object-store';
import type { ObjectFacts, UploadPolicy } from './policy';

export interface MinioStoreOptions {
  /** `http(s)://host[:port]` of the S3 API, as this process reaches it. */
  readonly endpoint: string;
  /**
   * `http(s)://host[:port]` clients reach the S3 API at, when it differs (containers, a proxy):
   * presigned URLs are signed for this host. Default: `endpoint`.
   */
  readonly publicEndpoint?: string;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly bucket: string;
  /** Region the URLs are signed for (default `us-east-1`, what MinIO uses). */
  readonly region?: string;
  /** Deadline of one storage request, ms (default 5000). */
  readonly requestTimeoutMs?: number;
}

const LIFECYCLE_RULE_ID = 'chat-media-expiry';

/**
 * @example
 * const store = new MinioObjectStore({ endpoint: 'http://127.0.0.1:9000', accessKey, secretKey,
 *   bucket: 'chat-media' });
 * await store.ensureBucket();
 */
export class MinioObjectStore implements ObjectStore {
  private readonly client: Client;
  /** Signs URLs for clients; never makes a request (the region is fixed). */
  private readonly signer: Client;
  private readonly bucket: string;
  private readonly region: string;
  private readonly timeoutMs: number;

  constructor(options: MinioStoreOptions) {
    this.bucket = options.bucket;
    this.region = options.region ?? 'us-east-1';
    this.timeoutMs = options.requestTimeoutMs ?? 5000;
    this.client = this.newClient(options.endpoint, options);
    this.signer =
      options.publicEndpoint === undefined || options.publicEndpoint === options.endpoint
        ? this.client
        : this.newClient(options.publicEndpoint, options);
  }

  private newClient(endpoint: string, options: MinioStoreOptions): Client {
    const url = new URL(endpoint);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`object storage endpoint must be http(s), got ${endpoint}`);
    }
    const useSSL = url.protocol === 'https:';
    return new Client({
      endPoint: url.hostname,
      port: url.port === '' ? (useSSL ? 443 : 80) : Number(url.port),
      useSSL,
      accessKey: options.accessKey,
      secretKey: options.secretKey,
      // A fixed region spares the bucket-location lookup before presigning.
      region: this.region,
      // Path-style URLs work with MinIO, S3 and local servers without wildcard DNS.
      pathStyle: true,
      // Callers retry (the SDK's outbox); the client's own retries would only add latency.
      retryOptions: { disableRetry: true },
    });
  }

  ensureBucket(): Promise<boolean> {
    return this.call('ensure bucket', async () => {
      if (await this.client.bucketExists(this.bucket)) return false;
      try {
        await this.client.makeBucket(this.bucket, this.region);
        return true;
      } catch (err) {
        // Another node created it in between.
        const code = errorCode(err);
        if (code === 'BucketAlreadyOwnedByYou' || code === 'BucketAlreadyExists') return false;
        throw err;
      }
    });
  }

  async setExpiryDays(days: number): Promise<void> {
    // Not through call(): "not implemented" must reach the caller as itself, to be logged.
    await withDeadline(
      this.client.setBucketLifecycle(this.bucket, {
        Rule: [
          {
            ID: LIFECYCLE_RULE_ID,
            Status: 'Enabled',
            Filter: { Prefix: '' },
            Expiration: { Days: days },
          },
        ],
      }),
      this.timeoutMs,
    );
  }

  probe(): Promise<void> {
    return this.call('probe', async () => {
      if (!(await this.client.bucketExists(this.bucket))) {
        throw new Error(`bucket ${this.bucket} does not exist`);
      }
    });
  }

  presignPost(policy: UploadPolicy): Promise<PresignedPost> {
    return this.call('presign upload', async () => {
      const post = this.signer.newPostPolicy();
      post.setBucket(policy.bucket);
      post.setKey(policy.key);
      post.setContentType(policy.contentType);
      post.setContentLengthRange(policy.size, policy.size);
      post.setExpires(policy.expiresAt);
      const result = await this.signer.presignedPostPolicy(post);
      const fields: Record<string, string> = {};
      for (const [name, value] of Object.entries(result.formData)) fields[name] = String(value);
      return { url: result.postURL, fields };
    });
  }

  presignGet(key: string, ttlSec: number, now: Date): Promise<string> {
    return this.call('presign download', () =>
      this.signer.presignedGetObject(this.bucket, key, ttlSec, {}, now),
    );
  }

  stat(key: string): Promise<ObjectFacts | null> {
    return this.call('stat', async () => {
      try {
        const stat = await this.client.statObject(this.bucket, key);
        const type: unknown = stat.metaData['content-type'];
        return { size: stat.size, contentType: typeof type === 'string' ? type : undefined };
      } catch (err) {
        const code = errorCode(err);
        if (code === 'NotFound' || code === 'NoSuchKey') return null;
        throw err;
      }
    });
  }

  remove(keys: readonly string[]): Promise<void> {
    return this.call('remove', async () => {
      if (keys.length === 0) return;
      // One multi-object delete request (S3 takes up to 1000 keys per request).
      for (let i = 0; i < keys.length; i += 1000) {
        const results = await this.client.removeObjects(this.bucket, keys.slice(i, i + 1000));
        const failed = results.find((r) => r?.Error !== undefined && r.Error.Code !== 'NoSuchKey');
        if (failed !== undefined) throw new Error(`remove failed: ${JSON.stringify(failed)}`);
      }
    });
  }

  private async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(run(), this.timeoutMs);
    } catch (err) {
      if (isChatError(err)) throw err;
      throw new ChatError('UNAVAILABLE', 'object storage is unavailable', {
        operation: what,
        cause: err instanceof Error ? err.message : String(err),
        code: errorCode(err),
      });
    }
  }
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
