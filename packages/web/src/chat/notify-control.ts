/**
 * The "notify me" button of the chat page: asks the browser for permission, registers the
 * service worker, subscribes to push with the nodes' VAPID key and hands the subscription to
 * the node (`client.registerPush`). The thin browser part; the decisions are in `notify.ts`.
 */
import type { PushTargetSpec } from '@chat/protocol';
import type { Dom } from './view';
import type { NotifyState } from './notify';
import {
  PUSH_WORKER_SCOPE,
  PUSH_WORKER_URL,
  base64UrlToBytes,
  fetchVapidKey,
  notifyStatusText,
  offersNotifications,
  permissionState,
  pushTargetOf,
  sameKey,
} from './notify';

/** What the button needs of the signed-in session: the SDK's push requests. */
export interface PushAccount {
  registerPush(target: PushTargetSpec): Promise<void>;
  pushSettings(changes?: { readonly previews?: boolean }): Promise<{ previews: boolean }>;
}

export class NotifyControl {
  private vapidKey: string | undefined;

  constructor(
    private readonly dom: Dom,
    private readonly account: () => PushAccount | undefined,
  ) {
    dom.notifyButton.addEventListener('click', () => void this.turnOn());
    dom.notifyPreviews.addEventListener('change', () => void this.setPreviews());
  }

  /** Shows the button when the browser can push and the registry serves a key. */
  async offer(): Promise<void> {
    this.vapidKey = await fetchVapidKey(location.origin, (url) => fetch(url));
    this.dom.notify.hidden = !offersNotifications(navigator, window, this.vapidKey);
    // Set once the answer is in, so that a hidden button can be told from one not decided yet.
    this.dom.notify.dataset.offered = String(!this.dom.notify.hidden);
    if (!this.dom.notify.hidden && Notification.permission === 'denied') this.show('blocked');
  }

  /** Back to "off" for the next user of the page (sign-out). */
  reset(): void {
    this.show('off');
    this.dom.notifyPreviewsLabel.hidden = true;
  }

  private show(state: NotifyState, error?: string): void {
    this.dom.notifyStatus.dataset.state = state;
    this.dom.notifyStatus.textContent = notifyStatusText(state, error);
    this.dom.notifyButton.disabled = state === 'asking';
  }

  private async turnOn(): Promise<void> {
    const key = this.vapidKey;
    if (key === undefined) return;
    this.show('asking');
    try {
      const refused = permissionState(await Notification.requestPermission());
      if (refused !== undefined) return this.show(refused);
      await navigator.serviceWorker.register(PUSH_WORKER_URL, { scope: PUSH_WORKER_SCOPE });
      const registration = await navigator.serviceWorker.ready;
      const serverKey = base64UrlToBytes(key);
      let subscription = await registration.pushManager.getSubscription();
      // A subscription made for an earlier run's key would be refused by the push service.
      if (subscription !== null && !sameKey(subscription.options.applicationServerKey, serverKey)) {
        await subscription.unsubscribe();
        subscription = null;
      }
      subscription ??= await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: serverKey,
      });
      const account = this.account();
      if (account === undefined) throw new Error('not signed in');
      await account.registerPush(pushTargetOf(subscription.toJSON()));
      this.show('on');
      this.dom.notifyPreviews.checked = (await account.pushSettings()).previews;
      this.dom.notifyPreviewsLabel.hidden = false;
    } catch (err) {
      this.show('error', (err as Error).message);
    }
  }

  private async setPreviews(): Promise<void> {
    const account = this.account();
    if (account === undefined) return;
    try {
      const { previews } = await account.pushSettings({
        previews: this.dom.notifyPreviews.checked,
      });
      this.dom.notifyPreviews.checked = previews;
    } catch (err) {
      this.show('error', (err as Error).message);
    }
  }
}
