/**
 * Step-up logic of a throughput search: offer a rate, judge the step, pick the next rate.
 * Pure, so that the search can be unit-tested without a server.
 */

export interface StepCriteria {
  /** A step fails when its p99 send-to-deliver is above this (ms). */
  readonly maxDeliverP99Ms: number;
  /** A step fails when it achieved less than this fraction of the offered rate. */
  readonly minAchievedRatio: number;
}

export const defaultCriteria: StepCriteria = Object.freeze({
  maxDeliverP99Ms: 200,
  minAchievedRatio: 0.9,
});

/** What a step must report to be judged. */
export interface StepVerdictInput {
  readonly offeredRate: number;
  readonly achievedRate: number;
  readonly deliverP99Ms: number;
  /** Error replies, messages never delivered within the drain deadline, dropped connections. */
  readonly failures: number;
}

export interface StepVerdict {
  readonly passed: boolean;
  /** Why it failed; empty when it passed. */
  readonly reasons: readonly string[];
}

export function judgeStep(step: StepVerdictInput, criteria: StepCriteria): StepVerdict {
  const reasons: string[] = [];
  if (step.deliverP99Ms > criteria.maxDeliverP99Ms) {
    reasons.push(`p99 deliver ${round1(step.deliverP99Ms)} ms > ${criteria.maxDeliverP99Ms} ms`);
  }
  if (step.achievedRate < criteria.minAchievedRatio * step.offeredRate) {
    reasons.push(
      `achieved ${Math.round(step.achievedRate)}/s < ${criteria.minAchievedRatio * 100}% of ${step.offeredRate}/s`,
    );
  }
  if (step.failures > 0)
    reasons.push(`${step.failures} errors, undelivered messages or dropped connections`);
  return { passed: reasons.length === 0, reasons };
}

export interface LadderOptions {
  /** First offered rate (msgs/s). */
  readonly startRate: number;
  /** Each step multiplies the rate by this until a step fails (default 2). */
  readonly factor?: number;
  /** Rates above this are never offered. */
  readonly maxRate: number;
  /** Steps in all, refinement included (a hard bound on the search). */
  readonly maxSteps: number;
  /**
   * After the first failure, try once more at the geometric mean of the last pass and the
   * failure, to halve the search's uncertainty (default true).
   */
  readonly refine?: boolean;
}

export interface LadderEntry {
  readonly rate: number;
  readonly passed: boolean;
}

/**
 * The next rate to offer given the steps so far, or null when the search is over: up by
 * `factor` while steps pass, then (optionally) one refinement step between the last pass and
 * the first failure.
 */
export function nextRate(history: readonly LadderEntry[], options: LadderOptions): number | null {
  const factor = options.factor ?? 2;
  if (history.length >= options.maxSteps) return null;
  const last = history[history.length - 1];
  if (last === undefined) return Math.min(options.startRate, options.maxRate);
  const failures = history.filter((h) => !h.passed);
  if (failures.length === 0) {
    const next = Math.round(last.rate * factor);
    return next > options.maxRate || next <= last.rate ? null : next;
  }
  // Refine exactly once: right after the first failure.
  if (!(options.refine ?? true) || failures.length > 1 || last.passed) return null;
  const pass = highestPassed(history);
  if (pass === null) return null;
  const mid = roundRate(Math.sqrt(pass * last.rate));
  return mid > pass && mid < last.rate ? mid : null;
}

/** The highest sustained rate: the highest offered rate that passed, or null if none did. */
export function highestPassed(history: readonly LadderEntry[]): number | null {
  let best: number | null = null;
  for (const h of history) if (h.passed && (best === null || h.rate > best)) best = h.rate;
  return best;
}

/** Rounds to two significant digits, so rates read well in a table (1414 -> 1400). */
export function roundRate(rate: number): number {
  if (rate <= 0) return 0;
  const magnitude = 10 ** Math.max(0, Math.floor(Math.log10(rate)) - 1);
  return Math.round(rate / magnitude) * magnitude;
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}
