/**
 * The few object-storage operations media needs, so the service can be exercised without a
 * particular client. Implementations convert their errors at the edge: a missing object is
 * `null` from `stat`, anything else that goes wrong is ChatError UNAVAILABLE.
 */
import type { ObjectFacts, UploadPolicy } from './policy';

export interface PresignedPost {
  /** Where the form is POSTed (the bucket URL). */
  readonly url: string;
  /** Form fields to send, in this order, before the `file` field. */
  readonly fields: Readonly<Record<string, string>>;
}

export interface ObjectStore {
  /** Creates the bucket when missing; resolves true when it was created. */
  ensureBucket(): Promise<boolean>;
  /** Sets the rule that deletes objects `days` after upload; rejects where unsupported. */
  setExpiryDays(days: number): Promise<void>;
  /** A cheap round trip that fails when storage is unreachable. */
  probe(): Promise<void>;
  presignPost(policy: UploadPolicy): Promise<PresignedPost>;
  presignGet(key: string, ttlSec: number, now: Date): Promise<string>;
  /** Size and type of an object, or null when there is no such object. */
  stat(key: string): Promise<ObjectFacts | null>;
  /** Deletes the objects; keys that do not exist count as deleted. */
  remove(keys: readonly string[]): Promise<void>;
}
