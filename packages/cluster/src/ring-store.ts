import { ChatError } from '@chat/protocol';
import type { IKeyValue, Namespace } from 'etcd3';
import { toClusterError } from './errors';
import { clusterKeys, decodeJson, InvalidClusterData, parseRingConfig } from './model';
import type { ClusterKeys, RingConfig, VersionedRing } from './model';

export type CasResult =
  | { readonly ok: true; readonly revision: number }
  | { readonly ok: false; readonly current: VersionedRing | undefined };

export interface RingConfigStoreOptions {
  /** An etcd3 client (or namespace of one); the store does not close it. */
  readonly etcd: Namespace;
  /** Cluster key prefix, e.g. `/chat`. */
  readonly prefix: string;
}

/**
 * Reads and writes the ring configuration key. Writes are compare-and-swap on the key's mod
 * revision, so two operators working from the same state cannot both win; the loser gets the
 * current configuration back and decides again.
 *
 * @example
 * const store = new RingConfigStore({ etcd, prefix: '/chat' });
 * const current = await store.readRing();
 * const next = { epoch: (current?.config.epoch ?? 0) + 1, members: [...] };
 * const result = await store.casRing(current?.modRevision ?? 0, next);
 * if (!result.ok) console.log('someone else changed the ring first', result.current);
 */
export class RingConfigStore {
  private readonly etcd: Namespace;
  private readonly keys: ClusterKeys;

  constructor(options: RingConfigStoreOptions) {
    this.etcd = options.etcd;
    this.keys = clusterKeys(options.prefix);
  }

  /** The current configuration with its mod revision, or undefined if none was written yet. */
  async readRing(): Promise<VersionedRing | undefined> {
    try {
      const res = await this.etcd.get(this.keys.ring).exec();
      return decodeRingKv(res.kvs[0]);
    } catch (err) {
      throw toClusterError(err, 'readRing', { key: this.keys.ring });
    }
  }

  /**
   * Writes `next` if the ring key's mod revision is still `expectedModRevision` (0: the key must
   * not exist yet). `next.epoch` must be the current epoch + 1 (1 for the first configuration);
   * anything else is a BAD_REQUEST. Etcd unreachable: ChatError UNAVAILABLE (the write may or
   * may not have happened; read again).
   */
  async casRing(expectedModRevision: number, next: RingConfig): Promise<CasResult> {
    if (!Number.isSafeInteger(expectedModRevision) || expectedModRevision < 0) {
      throw new ChatError('BAD_REQUEST', 'expected mod revision must be a non-negative integer', {
        expectedModRevision,
      });
    }
    let config: RingConfig;
    try {
      config = parseRingConfig(next);
    } catch (err) {
      if (err instanceof InvalidClusterData) {
        throw new ChatError('BAD_REQUEST', `invalid ring configuration: ${err.message}`);
      }
      throw err;
    }

    // The epoch rule needs the configuration at the expected revision. Reading it first is
    // safe: the transaction below only writes if the key has not changed since.
    const current = await this.readRing();
    if ((current?.modRevision ?? 0) !== expectedModRevision) return { ok: false, current };
    const expectedEpoch = (current?.config.epoch ?? 0) + 1;
    if (config.epoch !== expectedEpoch) {
      throw new ChatError('BAD_REQUEST', `ring epoch must be ${expectedEpoch}`, {
        epoch: config.epoch,
        expectedEpoch,
      });
    }

    const key = this.keys.ring;
    try {
      const res = await this.etcd
        .if(key, 'Mod', '==', expectedModRevision)
        .then(this.etcd.put(key).value(JSON.stringify(config)))
        .else(this.etcd.get(key))
        .commit();
      if (res.succeeded) return { ok: true, revision: Number(res.header.revision) };
      return { ok: false, current: decodeRingKv(res.responses[0]?.response_range.kvs[0]) };
    } catch (err) {
      throw toClusterError(err, 'casRing', { key, expectedModRevision });
    }
  }
}

/** Decodes the ring key; an unparseable value is an INTERNAL error (someone wrote garbage). */
function decodeRingKv(kv: IKeyValue | undefined): VersionedRing | undefined {
  if (!kv) return undefined;
  try {
    const config = decodeJson(kv.value.toString('utf8'), parseRingConfig);
    return { config, modRevision: Number(kv.mod_revision) };
  } catch (err) {
    throw new ChatError('INTERNAL', `ring configuration in etcd is invalid: ${String(err)}`, {
      modRevision: Number(kv.mod_revision),
    });
  }
}
