// The admission gate: a held `precreate` waits for the caller's verdict; the reactor answers
// at the deadline (gateTimeoutMs) with the timeout policy that fits the container.
import type { ContainerEvent } from '../events.js';
import type { ExecRecord, GateExpiredRecord, NativeWatcher, WatchdogAnsweredRecord } from '../native.js';
import type { Session } from './containers.js';
import type { Report } from './report.js';

export type GateVerdict = 'allow' | 'deny' | { verdict: 'allow' | 'deny'; reason?: string } | undefined | void;

/** What the deadline answers: let the runtime go, or make its exec fail. */
export type TimeoutPolicy = 'fail-open' | 'fail-closed';

/** A rule picks a timeout policy for the containers it matches; every given field must match. */
export interface TimeoutRule {
  namespace?: string | RegExp;
  pod?: string | RegExp;
  onTimeout: TimeoutPolicy;
}

interface Verdict {
  allow: boolean;
  reason: string | null;
}

/** undefined (a gate that returns nothing) allows. */
function normalizeVerdict(v: GateVerdict): Verdict {
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
function timeoutPolicyFor(
  event: ContainerEvent,
  fallback: TimeoutPolicy,
  rules: readonly TimeoutRule[],
): TimeoutPolicy {
  const rule = rules.find((r) => matches(r.namespace, event.pod?.namespace) && matches(r.pod, event.pod?.name));
  return rule?.onTimeout ?? fallback;
}

/** The caller's gate and timeout policy (WatchOptions of the same names, defaults applied). */
export interface GatePolicy {
  gate: ((event: ContainerEvent) => GateVerdict | Promise<GateVerdict>) | undefined;
  onTimeout: TimeoutPolicy;
  timeoutRules: readonly TimeoutRule[];
}

/**
 * What the watchdog answers a creation whose policy it cannot know (it reads no bundle): allow
 * only when every policy of the watcher would. A pause never makes fail-closed fail-open.
 */
export function watchdogAllowsCreations(policy: Pick<GatePolicy, 'onTimeout' | 'timeoutRules'>): boolean {
  return policy.onTimeout === 'fail-open' && policy.timeoutRules.every((r) => r.onTimeout === 'fail-open');
}

/** Why a creation got no container when the watchdog answered it. */
export const WATCHDOG_DENY_REASON = 'watchdog (fail-closed): the watcher was not running';

export class Gate {
  /** held precreates by fanotify cookie, until answered or expired */
  private readonly heldByCookie = new Map<number, Session>();

  constructor(
    private readonly native: Pick<NativeWatcher, 'answer' | 'setExpiryVerdict'>,
    private readonly report: Pick<Report, 'publish' | 'error' | 'gateTimeout'>,
    private readonly policy: GatePolicy,
    /** the runtime's exec fails: no container (lifecycle.ts) */
    private readonly deny: (session: Session, reason: string) => void,
  ) {}

  /** Reports a `precreate`; a held one's runtime then waits for the gate's verdict. */
  admit(event: ContainerEvent, session: Session, rec: Pick<ExecRecord, 'cookie' | 'watchdog'>): void {
    const { cookie } = rec;
    if (!event.held) {
      this.report.publish(event);
      if (rec.watchdog === 'denied') this.deny(session, WATCHDOG_DENY_REASON);
      return;
    }
    // A listener's exception must not skip the gate.
    try {
      this.report.publish(event);
    } catch (err) {
      this.report.error(err);
    }
    const fallback = this.policy.onTimeout;
    const policy = timeoutPolicyFor(event, fallback, this.policy.timeoutRules);
    // The reactor's deadline answers the fallback unless told; the watchdog answers a creation
    // whose policy it was not told as it would any creation (watchdogAllowsCreations).
    if (policy !== fallback || (policy === 'fail-open' && !watchdogAllowsCreations(this.policy)))
      this.native.setExpiryVerdict(cookie, policy === 'fail-open');
    // A gate that throws or rejects gave no verdict: its container gets what a timeout would.
    const noVerdict: Verdict = { allow: policy === 'fail-open', reason: 'gate failed' };
    this.heldByCookie.set(cookie, session);
    let verdict: Promise<GateVerdict>;
    try {
      verdict = Promise.resolve(this.policy.gate ? this.policy.gate(event) : 'allow');
    } catch {
      verdict = Promise.reject(new Error('gate threw'));
    }
    // The deadline is enforced natively; a verdict after it is simply late.
    verdict.then(
      (v) => this.settle(session, cookie, normalizeVerdict(v)),
      () => this.settle(session, cookie, noVerdict),
    );
  }

  /** The reactor answered at the deadline, or its watchdog did, the reactor being stalled. */
  expired(rec: GateExpiredRecord | WatchdogAnsweredRecord): void {
    const session = this.heldByCookie.get(rec.cookie);
    this.heldByCookie.delete(rec.cookie);
    if (session === undefined) return;
    const by = rec.kind === 'gate-expired' ? 'watcher' : 'watchdog';
    if (!rec.allowed) this.deny(session, by === 'watcher' ? 'gate timeout (fail-closed)' : WATCHDOG_DENY_REASON);
    this.report.gateTimeout({ id: session.id, allowed: rec.allowed, by });
  }

  private settle(session: Session, cookie: number, verdict: Verdict): void {
    this.heldByCookie.delete(cookie);
    if (this.native.answer(cookie, verdict.allow) && !verdict.allow) this.deny(session, verdict.reason ?? 'denied by gate');
  }
}
