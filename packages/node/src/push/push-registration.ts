/**
 * The push requests of a device (issue 18): register or remove its target, read or change the
 * user's preview setting. Registration goes through the user's owner node (where the device is
 * connected), which forgets its cached targets for the user at once.
 */
import type { OkFields, PushTargetSpec } from '@chat/protocol';
import { ChatError } from '@chat/protocol';
import { isPrivateEndpoint } from './endpoint-policy';

/** What registration needs of the store (PgPushStore). */
export interface PushTargetStore {
  registerTarget(
    userId: string,
    deviceId: string,
    target: PushTargetSpec,
    now: number,
  ): Promise<void>;
  removeTarget(userId: string, deviceId: string): Promise<boolean>;
  previews(userId: string): Promise<boolean>;
  setPreviews(userId: string, previews: boolean): Promise<void>;
}

export interface PushRegistrationDeps {
  readonly store: PushTargetStore;
  readonly now: () => number;
  /** The user's targets changed: cached copies are stale. */
  readonly invalidate: (userId: string) => void;
  /** Web Push endpoints on loopback or private addresses are accepted (tests, local runs). */
  readonly allowPrivateEndpoints: boolean;
}

export class PushRegistration {
  constructor(private readonly deps: PushRegistrationDeps) {}

  async register(user: string, device: string, target: PushTargetSpec): Promise<void> {
    if (
      target.kind === 'webpush' &&
      !this.deps.allowPrivateEndpoints &&
      isPrivateEndpoint(target.endpoint)
    ) {
      throw new ChatError(
        'BAD_REQUEST',
        'target.endpoint must name a public host (this node does not push to private addresses)',
      );
    }
    await this.deps.store.registerTarget(user, device, target, this.deps.now());
    this.deps.invalidate(user);
  }

  async remove(user: string, device: string): Promise<void> {
    await this.deps.store.removeTarget(user, device);
    this.deps.invalidate(user);
  }

  /** The user's push settings, after changing the one given. */
  async settings(user: string, previews: boolean | undefined): Promise<OkFields['pushSettings']> {
    if (previews === undefined) return { previews: await this.deps.store.previews(user) };
    await this.deps.store.setPreviews(user, previews);
    return { previews };
  }
}

/** For a node built without a push store: the requests are refused, not silently dropped. */
export const pushNotConfigured: Pick<PushRegistration, 'register' | 'remove' | 'settings'> = {
  register: () =>
    Promise.reject(new ChatError('BAD_REQUEST', 'push notifications are not configured')),
  remove: () =>
    Promise.reject(new ChatError('BAD_REQUEST', 'push notifications are not configured')),
  settings: () =>
    Promise.reject(new ChatError('BAD_REQUEST', 'push notifications are not configured')),
};
