// What the watchdog did, as the watcher tells it: the process that answers runtime execs while
// the watcher's own process does not run (addon/watchdog_shared.h). It stands in ('takeover') and
// hands back ('back') while the watcher is stopped, so both are told once the watcher runs again.
import { diagnostic, type DiagnosticEvent } from '../diagnostics.js';
import type { WatchdogEvent } from '../events.js';
import type { WatchdogRecord } from '../native.js';

const NS_PER_MS = 1_000_000;

export class WatchdogReport {
  /** the monotonic time of the takeover being told, for the length of the stand-in */
  private takeoverNs: bigint | null = null;

  constructor(
    private readonly emit: (event: WatchdogEvent) => void,
    private readonly diagnose: (event: DiagnosticEvent) => void,
  ) {}

  onRecord(rec: WatchdogRecord): void {
    switch (rec.change) {
      case 'takeover':
        this.takeoverNs = rec.ts;
        this.emit({ ...this.base(rec), waitedMs: Math.round(rec.waitedNs / NS_PER_MS) });
        return;
      case 'back': {
        const event: WatchdogEvent = { ...this.base(rec), answered: { allowed: rec.allowed, denied: rec.denied } };
        if (this.takeoverNs !== null) event.durationMs = Math.round(Number(rec.ts - this.takeoverNs) / NS_PER_MS);
        if (rec.message) event.reason = rec.message;
        this.takeoverNs = null;
        this.emit(event);
        return;
      }
      case 'exited':
        this.diagnose(this.problem('ERR_WATCHDOG_EXITED', `${rec.message}; the watcher starts another`, rec));
        return;
      case 'unavailable':
        this.diagnose(
          this.problem('ERR_WATCHDOG_UNAVAILABLE', `no watchdog (${rec.message}): a stalled watcher holds runtime execs until it runs again`, rec),
        );
        return;
    }
  }

  private base(rec: WatchdogRecord): Pick<WatchdogEvent, 'type' | 'time' | 'change' | 'monotonicNs'> {
    return { type: 'watchdog', time: new Date().toISOString(), change: rec.change as WatchdogEvent['change'], monotonicNs: rec.ts.toString() };
  }

  private problem(code: 'ERR_WATCHDOG_EXITED' | 'ERR_WATCHDOG_UNAVAILABLE', message: string, rec: WatchdogRecord): DiagnosticEvent {
    return diagnostic(code, 'degraded', message, { ts: rec.ts, id: null, bundle: null, runtime: null }, { pid: rec.pid });
  }
}
