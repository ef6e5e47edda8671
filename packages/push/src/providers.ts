import { createApnsProvider } from './apns-provider';
import type { PushConfig } from './config';
import { createFcmProvider } from './fcm-provider';
import type { PushKind, PushProvider, PushTarget } from './provider';
import { createWebPushProvider } from './webpush-provider';

/** The configured providers, one per kind. */
export interface PushProviders {
  readonly kinds: readonly PushKind[];
  /** The provider for a target's kind, or undefined when that kind is not configured. */
  providerFor(target: PushTarget): PushProvider | undefined;
  close(): Promise<void>;
}

/**
 * One provider per configured kind.
 *
 * @example
 * const push = createPushProviders(parsePushConfig(process.env));
 * const result = await push.providerFor(target)?.send(target, notification);
 */
export function createPushProviders(config: PushConfig): PushProviders {
  const byKind = new Map<PushKind, PushProvider>();
  if (config.apns) byKind.set('apns', createApnsProvider(config.apns));
  if (config.fcm) byKind.set('fcm', createFcmProvider(config.fcm));
  if (config.webpush) byKind.set('webpush', createWebPushProvider(config.webpush));
  return {
    kinds: [...byKind.keys()],
    providerFor: (target) => byKind.get(target.kind),
    async close(): Promise<void> {
      await Promise.all([...byKind.values()].map((p) => p.close()));
    },
  };
}
