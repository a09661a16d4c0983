// Waiting, for the tests and the benchmarks: for a condition (until), for a while (sleep), or
// with the event loop stuck (busyWait). To know that something did not happen, see fence.ts.

/** Resolves after ms: for a pause that is itself tested or measured, never to let something catch up. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves once predicate holds, polled every everyMs; rejects after timeoutMs with what was
 * awaited (a function: described when the time is up, e.g. with a daemon's log by then).
 * A predicate that throws ends the wait with its error.
 */
export async function until(
  predicate: () => boolean | Promise<boolean>,
  what: string | (() => string),
  timeoutMs = 10_000,
  everyMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(everyMs);
  }
}

/** Blocks this thread - and so the event loop - for ms. */
export function busyWait(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // spin
  }
}
