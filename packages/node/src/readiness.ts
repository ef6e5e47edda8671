/**
 * `GET /readyz`: may this node get traffic? Ready when it is registered in etcd and has read the
 * cluster state (when clustered), is not leaving, and Postgres answered a `select 1` recently.
 * The Postgres answer is cached for a short while, so probes from a load balancer or kubelet
 * never add load, and one slow check is shared by concurrent probes.
 *
 * @example
 * const readiness = new Readiness({ clock, checkDatabase: () => store.ping(), cluster: () => runtime.notReadyReason() });
 * const { ready, checks } = await readiness.check();
 */
import type { Clock } from './clock';

export interface ReadinessOptions {
  readonly clock: Clock;
  /** Resolves when Postgres answers; rejects otherwise. */
  readonly checkDatabase: () => Promise<void>;
  /** Why the cluster side is not ready, or undefined when it is (absent for a single node). */
  readonly cluster?: () => string | undefined;
  /** How long a database answer is reused (default 2000 ms). */
  readonly cacheMs?: number;
  /** A database check slower than this counts as a failure (default 1000 ms). */
  readonly timeoutMs?: number;
}

export interface ReadyStatus {
  readonly ready: boolean;
  /** One entry per check: `ok` or why not. */
  readonly checks: Readonly<Record<string, string>>;
}

export class Readiness {
  private readonly options: Readonly<Required<Omit<ReadinessOptions, 'cluster'>>> &
    Pick<ReadinessOptions, 'cluster'>;
  private database: { at: number; error: string | undefined } | undefined;
  private inFlight: Promise<string | undefined> | undefined;
  private stopping = false;

  constructor(options: ReadinessOptions) {
    this.options = Object.freeze({ cacheMs: 2_000, timeoutMs: 1_000, ...options });
  }

  /** From now on the node is not ready (shutdown started). */
  markStopping(): void {
    this.stopping = true;
  }

  async check(): Promise<ReadyStatus> {
    const checks: Record<string, string> = {};
    if (this.stopping) checks.node = 'shutting down';
    if (this.options.cluster !== undefined) checks.cluster = this.options.cluster() ?? 'ok';
    checks.postgres = (await this.databaseError()) ?? 'ok';
    return { ready: Object.values(checks).every((c) => c === 'ok'), checks };
  }

  private async databaseError(): Promise<string | undefined> {
    const now = this.options.clock.now();
    if (this.database !== undefined && now - this.database.at < this.options.cacheMs)
      return this.database.error;
    this.inFlight ??= this.probeDatabase().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async probeDatabase(): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(
        () => resolve(`no answer within ${this.options.timeoutMs} ms`),
        this.options.timeoutMs,
      );
    });
    const error = await Promise.race([
      this.options.checkDatabase().then(
        () => undefined,
        (err: unknown) => (err instanceof Error ? err.message : String(err)),
      ),
      timeout,
    ]);
    clearTimeout(timer);
    this.database = { at: this.options.clock.now(), error };
    return error;
  }
}
