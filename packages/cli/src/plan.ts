/**
 * Planning of ring changes: from the ring as read (with its mod revision) and the registered
 * nodes to the one configuration chatctl writes with compare-and-swap. Pure: validation errors
 * are thrown before anything is written.
 */
import type { NodeInfo, RingConfig, RingMember, VersionedRing } from '@chat/cluster';
import { compareIds, isValidId } from '@chat/protocol';
import { MAX_WEIGHT } from '@chat/ring';
import { UsageError, ValidationError } from './errors';

/** One compare-and-swap write of the ring key. */
export interface RingChange {
  /** Mod revision of the ring key the change was planned from (0: no ring yet). */
  readonly expectedModRevision: number;
  readonly next: RingConfig;
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** Things the operator should know; the change is valid anyway. */
  readonly warnings: readonly string[];
}

export interface ScaleInput {
  readonly current: VersionedRing | undefined;
  /** Registered nodes by id (the cluster snapshot). */
  readonly nodes: ReadonlyMap<string, NodeInfo>;
  readonly ids: readonly string[];
  /** Reconnects per second per draining node; absent: each node's default. */
  readonly ratePerSec?: number;
  /** ms since the epoch, stamped as `transition.startedAt`. */
  readonly now: number;
}

export interface ScaleOutInput extends ScaleInput {
  /** Weight of the new members; absent: the weight each node registered with. */
  readonly weight?: number;
}

export interface DrainRateInput {
  readonly current: VersionedRing | undefined;
  readonly ratePerSec: number;
}

function checkIds(ids: readonly string[]): void {
  if (ids.length === 0) throw new UsageError('name at least one node');
  const seen = new Set<string>();
  for (const id of ids) {
    if (!isValidId(id)) {
      throw new UsageError(`${JSON.stringify(id)} is not a node id (1-64 of [A-Za-z0-9._-])`);
    }
    if (seen.has(id)) throw new UsageError(`node ${id} is named twice`);
    seen.add(id);
  }
}

function checkRate(ratePerSec: number | undefined): void {
  if (ratePerSec !== undefined && !(ratePerSec > 0 && Number.isFinite(ratePerSec))) {
    throw new UsageError(`--rate must be a positive number, got ${ratePerSec}`);
  }
}

function isAlive(node: NodeInfo | undefined): boolean {
  return node !== undefined && node.leaving !== true;
}

function registeredList(nodes: ReadonlyMap<string, NodeInfo>): string {
  const ids = [...nodes.keys()].sort(compareIds);
  return ids.length === 0 ? 'none' : ids.join(', ');
}

function transitionFrom(
  current: RingConfig,
  now: number,
  ratePerSec: number | undefined,
): NonNullable<RingConfig['transition']> {
  return {
    fromEpoch: current.epoch,
    fromMembers: current.members,
    startedAt: now,
    ...(ratePerSec === undefined ? {} : { ratePerSec }),
  };
}

function supersedeWarning(current: RingConfig): string[] {
  const t = current.transition;
  return t === undefined
    ? []
    : [
        `the transition from epoch ${t.fromEpoch} to ${current.epoch} is still open; ` +
          'this change supersedes it',
      ];
}

/**
 * Adds registered nodes to the ring: the next epoch, with a transition from the current one.
 * @example planScaleOut({ current, nodes: snapshot.nodes, ids: ['node-4'], ratePerSec: 40, now: Date.now() })
 */
export function planScaleOut(input: ScaleOutInput): RingChange {
  checkIds(input.ids);
  checkRate(input.ratePerSec);
  if (input.weight !== undefined && !(input.weight > 0 && input.weight <= MAX_WEIGHT)) {
    throw new UsageError(`--weight must be in (0, ${MAX_WEIGHT}], got ${input.weight}`);
  }
  const config = input.current?.config;
  const members = config?.members ?? [];
  const previous = new Set(config?.transition?.fromMembers.map((m) => m.id) ?? []);
  const added: RingMember[] = [];
  for (const id of input.ids) {
    const node = input.nodes.get(id);
    if (members.some((m) => m.id === id)) {
      const dead = isAlive(node) ? '' : ' (it is not alive right now; once it runs it serves)';
      throw new ValidationError(
        'ALREADY_MEMBER',
        `${id} is already a ring member (epoch ${config?.epoch ?? 0})${dead}`,
      );
    }
    if (node === undefined) {
      if (previous.has(id)) {
        throw new ValidationError(
          'NOT_ALIVE',
          `${id} is not alive: it was a member before epoch ${config?.epoch} but is not registered now; start it first`,
        );
      }
      throw new ValidationError(
        'UNKNOWN_NODE',
        `${id} is not registered and not a ring member: start the node first ` +
          `(registered: ${registeredList(input.nodes)})`,
      );
    }
    if (node.leaving === true) {
      throw new ValidationError('NOT_ALIVE', `${id} is shutting down (leaving): it cannot join`);
    }
    added.push({ id, weight: input.weight ?? node.weight });
  }
  const nextMembers = [...members, ...added];
  if (config === undefined) {
    return {
      expectedModRevision: 0,
      next: { epoch: 1, members: nextMembers },
      added: input.ids,
      removed: [],
      warnings: ['no ring was configured yet: writing the first one (nothing to drain)'],
    };
  }
  return {
    expectedModRevision: input.current?.modRevision ?? 0,
    next: {
      epoch: config.epoch + 1,
      members: nextMembers,
      transition: transitionFrom(config, input.now, input.ratePerSec),
    },
    added: input.ids,
    removed: [],
    warnings: supersedeWarning(config),
  };
}

/**
 * Removes members from the ring: their users drain to the remaining members. Refuses to leave
 * the ring without a live member.
 */
export function planScaleIn(input: ScaleInput): RingChange {
  checkIds(input.ids);
  checkRate(input.ratePerSec);
  const config = input.current?.config;
  if (config === undefined) {
    throw new ValidationError('NO_RING', 'no ring is configured yet: there is nothing to remove');
  }
  const warnings = supersedeWarning(config);
  for (const id of input.ids) {
    const node = input.nodes.get(id);
    if (!config.members.some((m) => m.id === id)) {
      if (node === undefined) {
        throw new ValidationError(
          'UNKNOWN_NODE',
          `${id} is not registered and not a ring member ` +
            `(members: ${config.members.map((m) => m.id).join(', ')})`,
        );
      }
      throw new ValidationError('NOT_MEMBER', `${id} is not a ring member (epoch ${config.epoch})`);
    }
    if (!isAlive(node)) warnings.push(`${id} is not alive: removing it from the ring anyway`);
  }
  const remove = new Set(input.ids);
  const remaining = config.members.filter((m) => !remove.has(m.id));
  if (remaining.length === 0) {
    throw new ValidationError(
      'LAST_MEMBER',
      `this would remove the last ring member${input.ids.length > 1 ? 's' : ''}: ` +
        'the ring needs at least one member',
    );
  }
  if (!remaining.some((m) => isAlive(input.nodes.get(m.id)))) {
    throw new ValidationError(
      'LAST_MEMBER',
      `this would leave no live ring member (remaining: ${remaining.map((m) => m.id).join(', ')}, none alive): users would have nowhere to go`,
    );
  }
  return {
    expectedModRevision: input.current?.modRevision ?? 0,
    next: {
      epoch: config.epoch + 1,
      members: remaining,
      transition: transitionFrom(config, input.now, input.ratePerSec),
    },
    added: [],
    removed: input.ids,
    warnings,
  };
}

/** Changes the rate of the open transition: the next epoch, same members and transition. */
export function planDrainRate(input: DrainRateInput): RingChange {
  checkRate(input.ratePerSec);
  const config = input.current?.config;
  if (config === undefined) throw new ValidationError('NO_RING', 'no ring is configured yet');
  if (config.transition === undefined) {
    throw new ValidationError(
      'NO_TRANSITION',
      `no transition is open at epoch ${config.epoch}: there is no drain to pace`,
    );
  }
  return {
    expectedModRevision: input.current?.modRevision ?? 0,
    next: {
      epoch: config.epoch + 1,
      members: config.members,
      transition: { ...config.transition, ratePerSec: input.ratePerSec },
    },
    added: [],
    removed: [],
    warnings: [],
  };
}
