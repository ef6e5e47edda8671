/** Send-to-deliver latencies as SDK users observed them, and where the slowest spent it. */
import type { SdkWatch } from './sdk-watch';
import type { SentMessage } from './traffic';

/** One delivery of an acked message to one receiver. */
export interface DeliverySample {
  readonly user: string;
  readonly messageId: string;
  readonly sentAt: number;
  /** Arrival minus sentAt, ms; Infinity when it never arrived. */
  readonly ms: number;
}

/**
 * Send-to-deliver latencies of acked messages sent in [from, to), at every receiver (a chat
 * member other than the sender) that `receiver` selects; missing arrivals count as Infinity.
 */
export function deliverySamples(
  acked: readonly SentMessage[],
  watches: ReadonlyMap<string, SdkWatch>,
  from: number,
  to: number,
  receiver: (user: string) => boolean,
  sender: (user: string) => boolean = () => true,
): DeliverySample[] {
  const out: DeliverySample[] = [];
  for (const s of acked) {
    if (s.sentAt < from || s.sentAt >= to || !sender(s.sender.id)) continue;
    for (const m of s.chat.members) {
      if (m === s.sender || !receiver(m.id)) continue;
      const at = watches.get(m.id)?.arrivals.get(s.messageId);
      const ms = at === undefined ? Number.POSITIVE_INFINITY : Math.max(0, at - s.sentAt);
      out.push({ user: m.id, messageId: s.messageId, sentAt: s.sentAt, ms });
    }
  }
  return out;
}

/**
 * Where the slowest deliveries spent their time, relative to the receiver's last `moved` before
 * the message arrived: `sent`, `welcome` (on the new node) and `arrived`, ms after the move.
 */
export function explainSlowest(
  samples: readonly DeliverySample[],
  watches: ReadonlyMap<string, SdkWatch>,
  count = 3,
): string[] {
  return [...samples]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, count)
    .map((s) => {
      const w = watches.get(s.user)!;
      const arrived = s.sentAt + s.ms;
      const move = w.moves.filter((m) => m.at <= arrived).at(-1);
      if (move === undefined) return `${s.user}: ${s.ms} ms, no move before it arrived`;
      const welcome = w.welcomes.find((x) => x.at >= move.at);
      const ready = w.user.states.find((x) => x.at >= move.at && x.status === 'ready');
      const after = (at: number | undefined): string =>
        at === undefined ? '-' : `${at - move.at}`;
      return (
        `${s.user}: ${s.ms} ms; after its move ${move.from} -> ${move.to}: sent ${after(s.sentAt)} ms, ` +
        `welcome ${after(welcome?.at)} ms, ready ${after(ready?.at)} ms, arrived ${after(arrived)} ms`
      );
    });
}
