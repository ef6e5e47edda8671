/**
 * Browser hints for reconnecting: a page that is hidden or offline does not spend reconnect
 * attempts (nobody looks, or nothing can connect), and one that comes back online or into view
 * reconnects at once instead of sitting out the rest of its backoff delay.
 */
import type { Disposer } from './typed-events';

/** What the client watches; `browserPageSignals()` reads the browser's, tests give their own. */
export interface PageSignals {
  /** `document.hidden`: the page is in a background tab or the app is minimised. */
  readonly hidden: boolean;
  /** `navigator.onLine`; false only when the device knows it has no network. */
  readonly online: boolean;
  /** Calls `listener` when either may have changed (`online`, `offline`, `visibilitychange`). */
  onChange(listener: () => void): Disposer;
}

interface EventSource {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

interface BrowserGlobals {
  addEventListener?: EventSource['addEventListener'];
  removeEventListener?: EventSource['removeEventListener'];
  document?: Partial<EventSource> & { readonly hidden?: boolean };
  navigator?: { readonly onLine?: boolean };
}

/**
 * The page's signals where the globals exist (browsers), else undefined (Node, and React
 * Native, which has no `document`: see the README for AppState and NetInfo).
 */
export function browserPageSignals(globals: object = globalThis): PageSignals | undefined {
  const g = globals as BrowserGlobals;
  const doc = g.document;
  if (
    typeof g.addEventListener !== 'function' ||
    typeof g.removeEventListener !== 'function' ||
    typeof doc?.addEventListener !== 'function' ||
    typeof doc.removeEventListener !== 'function'
  ) {
    return undefined;
  }
  const win = g as EventSource;
  const page = doc as EventSource & { readonly hidden?: boolean };
  return {
    get hidden() {
      return page.hidden === true;
    },
    get online() {
      return g.navigator?.onLine !== false;
    },
    onChange(listener) {
      win.addEventListener('online', listener);
      win.addEventListener('offline', listener);
      page.addEventListener('visibilitychange', listener);
      return () => {
        win.removeEventListener('online', listener);
        win.removeEventListener('offline', listener);
        page.removeEventListener('visibilitychange', listener);
      };
    },
  };
}
