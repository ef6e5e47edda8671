/** Time source, injected so timing logic can be tested without waiting. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = Object.freeze({ now: () => Date.now() });
