// Fences: how a test knows that something did not happen. A watcher hands on the kernel's
// records in the order they were made, so once a marker container run after everything else
// is reported to have ended, every record before it has been handled: an event not reported
// by then never will be. Exact where a sleep would only make it likely, and as fast as the
// machine.
import type { Lab } from './lab.js';
import { WAIT_MS, until } from './wait.js';

let fences = 0;

/** Whether id has reached a terminal event: its exit, or its runtime's failure. */
export function ended(events: readonly { id?: string; type: string }[], id: string): boolean {
  return events.some((e) => e.id === id && (e.type === 'exit' || e.type === 'failed'));
}

/**
 * Runs a marker container (`runc run` of /bin/true) in lab, then waits until reported(id) says
 * the watcher reported its end (see ended).
 */
export async function fence(lab: Lab, reported: (id: string) => boolean, timeoutMs = WAIT_MS): Promise<void> {
  const id = `fence-${process.pid.toString(36)}-${++fences}`;
  await lab.runc(['run', '--bundle', lab.bundle(id, ['/bin/true'], null), id]);
  await until(() => reported(id), `the end of fence container ${id}`, timeoutMs);
}
