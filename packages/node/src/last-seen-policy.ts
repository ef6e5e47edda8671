/**
 * Whether one user may see another's last seen and online status (issue 16), from what the
 * store knows (PgPresenceStore.lastSeenFor). A pure decision, apart from the lookups.
 *
 * - A user always sees their own.
 * - A target who blocked the asker hides it from them, whatever their setting.
 * - `everyone`: anyone who asks sees it; `contacts`: users who share a chat with the target;
 *   `nobody`: no one.
 *
 * What a hidden answer looks like depends on whether the asker shares a chat with the target:
 * those who do learn that it is hidden; anyone else gets NOT_FOUND, as for a user who does not
 * exist, so that nobody can probe for users they have no chat with.
 */
import type { LastSeenVisibility } from '@chat/protocol';

export interface LastSeenCase {
  readonly asker: string;
  readonly target: string;
  readonly shared: boolean;
  readonly visibility: LastSeenVisibility;
  readonly blocksAsker: boolean;
}

export type LastSeenAccess = 'visible' | 'hidden' | 'notFound';

export function lastSeenAccess(facts: LastSeenCase): LastSeenAccess {
  if (facts.asker === facts.target) return 'visible';
  const visible =
    !facts.blocksAsker &&
    (facts.visibility === 'everyone' || (facts.visibility === 'contacts' && facts.shared));
  if (visible) return 'visible';
  return facts.shared ? 'hidden' : 'notFound';
}
