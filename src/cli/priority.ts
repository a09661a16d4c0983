// The watcher's place in the CPU queue. Every runtime exec on the node waits on this process (a
// held creation until JS has handled its precreate), so when the node is busy making containers
// it must not queue for a CPU behind the very runtimes it holds. Measured under a storm of 16
// creators on 2 cores (docs/benchmarks.md): at nice 0 its JS thread waited for a CPU 4 to 12
// times as long as it ran.
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';

/** `watch`'s default nice value. */
export const WATCH_NICE = -10;

/**
 * Sets the nice value of every thread of this process; threads started later (the reactor's, the
 * watchdog's process) inherit it from the thread that starts them. Returns why it could not, or
 * null (lowering it below 0 needs CAP_SYS_NICE).
 */
export function setNice(nice: number): string | null {
  try {
    for (const tid of readdirSync('/proc/self/task')) setPriority(Number(tid), nice);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}
