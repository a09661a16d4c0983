// Waiting, for the tests and the benchmarks: for a condition (until), for a while (sleep), or
// with the event loop stuck (busyWait). To know that something did not happen, see fence.ts.

/** Resolves after ms: for a pause that is itself tested or measured, never to let something catch up. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * How long a wait for something that should happen gives it before failing: 10 s, times
 * OCINOTIFY_TEST_WAIT_SCALE where the machine is that much slower (a qemu guest under TCG, where
 * a CLI's start alone can take seconds). Only a failing wait takes it all.
 */
export const WAIT_MS = 10_000 * (Number(process.env.OCINOTIFY_TEST_WAIT_SCALE) || 1);

/**
 * Resolves once predicate holds, polled every everyMs; rejects after timeoutMs with what was
 * awaited (a function: described when the time is up, e.g. with a daemon's log by then).
 * A predicate that throws ends the wait with its error.
 */
export async function until(
  predicate: () => boolean | Promise<boolean>,
  what: string | (() => string),
  timeoutMs = WAIT_MS,
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
