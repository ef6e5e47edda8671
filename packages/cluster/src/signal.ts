import type { ClusterLogger } from './logger';

/** Removes the listener it was returned for. Calling it again does nothing. */
export type Disposer = () => void;

/**
 * One typed event: `add` returns a disposer, `emit` calls every listener. A listener that throws
 * is logged and does not stop the others.
 */
export class Signal<T> {
  private readonly listeners = new Set<(value: T) => void>();

  constructor(
    private readonly name: string,
    private readonly log: ClusterLogger,
  ) {}

  add(listener: (value: T) => void): Disposer {
    // Wrapped so that adding the same function twice gives two independent subscriptions.
    const entry = (value: T): void => listener(value);
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  emit(value: T): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(value);
      } catch (err) {
        this.log.error({ err, event: this.name }, 'cluster event listener threw');
      }
    }
  }

  clear(): void {
    this.listeners.clear();
  }
}
