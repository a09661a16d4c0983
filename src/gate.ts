// The admission gate: verdicts, and what a held runtime gets when no verdict comes in time.
import type { ContainerEvent } from './events.js';

export type GateVerdict = 'allow' | 'deny' | { verdict: 'allow' | 'deny'; reason?: string } | undefined | void;

/** What the deadline answers: let the runtime go, or make its exec fail. */
export type TimeoutPolicy = 'fail-open' | 'fail-closed';

/** A rule picks a timeout policy for the containers it matches; every given field must match. */
export interface TimeoutRule {
  namespace?: string | RegExp;
  pod?: string | RegExp;
  onTimeout: TimeoutPolicy;
}

export interface Verdict {
  allow: boolean;
  reason: string | null;
}

/** undefined (a gate that returns nothing) allows. */
export function normalizeVerdict(v: GateVerdict): Verdict {
  if (v === 'deny') return { allow: false, reason: null };
  if (typeof v === 'object' && v !== null) return { allow: v.verdict !== 'deny', reason: v.reason ?? null };
  return { allow: true, reason: null };
}

function matches(pattern: string | RegExp | undefined, value: string | undefined): boolean {
  if (pattern === undefined) return true;
  if (value === undefined) return false;
  return typeof pattern === 'string' ? pattern === value : pattern.test(value);
}

/** The first rule matching the event's pod decides; else the watcher's default. */
export function timeoutPolicyFor(
  event: ContainerEvent,
  fallback: TimeoutPolicy,
  rules: readonly TimeoutRule[],
): TimeoutPolicy {
  const rule = rules.find((r) => matches(r.namespace, event.pod?.namespace) && matches(r.pod, event.pod?.name));
  return rule?.onTimeout ?? fallback;
}
