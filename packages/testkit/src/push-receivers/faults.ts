/**
 * Scripted misbehaviour shared by the push receivers: the next N requests answer with an error
 * status (optionally with Retry-After) or never answer; a token can be made permanently gone.
 * Each receiver renders an error status in its provider's own error document.
 */
export type ScriptedFault =
  | { readonly kind: 'status'; readonly status: number; readonly retryAfter?: string }
  | { readonly kind: 'hang' };

export class FaultScript {
  private readonly queue: ScriptedFault[] = [];
  private readonly goneTokens = new Set<string>();

  /** The next `count` requests that pass verification get `fault` instead of success. */
  failNext(count: number, fault: ScriptedFault): void {
    for (let i = 0; i < count; i += 1) this.queue.push(fault);
  }

  /** Every later request for `token` (device token, registration token, subscription id) is told it is gone. */
  markGone(token: string): void {
    this.goneTokens.add(token);
  }

  isGone(token: string): boolean {
    return this.goneTokens.has(token);
  }

  /** The fault for this request, if one is scripted. */
  take(): ScriptedFault | undefined {
    return this.queue.shift();
  }
}
