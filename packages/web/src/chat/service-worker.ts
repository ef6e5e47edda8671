/**
 * The chat page's service worker, served at `/chat/sw.js` (scope `/chat/`): shows a
 * notification for every Web Push the nodes send, and brings the chat page forward (or opens
 * it) when the notification is clicked. Bundled on its own: it runs where there is no DOM.
 */
import { notificationFor } from './push-notification';

/*
 * The project compiles against the DOM library, not WebWorker (they conflict): the few
 * service worker types used here, declared as much as needed.
 */
interface ExtendableEventLike {
  waitUntil(work: Promise<unknown>): void;
}
interface PushEventLike extends ExtendableEventLike {
  readonly data: { text(): string } | null;
}
interface NotificationEventLike extends ExtendableEventLike {
  readonly notification: Notification;
}
interface WindowClientLike {
  readonly url: string;
  focus(): Promise<unknown>;
}
interface ServiceWorkerScopeLike {
  readonly registration: ServiceWorkerRegistration;
  readonly clients: {
    matchAll(options: {
      type: 'window';
      includeUncontrolled: boolean;
    }): Promise<WindowClientLike[]>;
    openWindow(url: string): Promise<unknown>;
    claim(): Promise<void>;
  };
  skipWaiting(): Promise<void>;
  addEventListener(type: 'install' | 'activate', listener: (e: ExtendableEventLike) => void): void;
  addEventListener(type: 'push', listener: (e: PushEventLike) => void): void;
  addEventListener(type: 'notificationclick', listener: (e: NotificationEventLike) => void): void;
}

const worker = self as unknown as ServiceWorkerScopeLike;

// The registry rebuilds the bundle on every start: a new worker takes over at once.
worker.addEventListener('install', (e) => e.waitUntil(worker.skipWaiting()));
worker.addEventListener('activate', (e) => e.waitUntil(worker.clients.claim()));

worker.addEventListener('push', (e) => {
  const { title, options } = notificationFor(e.data === null ? null : e.data.text());
  e.waitUntil(worker.registration.showNotification(title, options));
});

worker.addEventListener('notificationclick', (e) => {
  e.notification.close();
  e.waitUntil(focusChatPage());
});

async function focusChatPage(): Promise<void> {
  const scope = worker.registration.scope;
  const pages = await worker.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const open = pages.find((page) => page.url.startsWith(scope));
  if (open !== undefined) await open.focus();
  else await worker.clients.openWindow(scope);
}
