// What the integration tests assert about a container's steps, on top of the kit (test/kit/).
import { expect } from 'vitest';
import type { ContainerEvent } from '../../src/index.js';
import type { Recorder } from '../kit/index.js';

type Steps = [ContainerEvent, ContainerEvent, ContainerEvent, ContainerEvent];

/**
 * One container's four steps, once each and in order, each matching `each` (what it should have
 * been resolved to); the precreate held with its spec read, start and exit in create's pid, and
 * the exit as `exit` says. Returns the steps for what is particular to a manager.
 *
 * Held by the watcher, or by its watchdog when rec's watcher said it had stalled (a busy node can
 * stop this process's threads for the budget): the runtime waited no longer than the budget, and
 * the container was reported with the same metadata once the watcher ran again. A failed step
 * tells the whole container and what else the watcher said.
 */
export function expectSteps(events: ContainerEvent[], label: string, each: object, exit: Partial<ContainerEvent>, rec: Recorder): Steps {
  const told = `${label}: ${events.map(stepOf).join(', ')}\n${rec.context()}`;
  expect(events.map((e) => e.type), told).toEqual(['precreate', 'create', 'start', 'exit']);
  for (const e of events) expect(e, `${label} ${e.type}\n${told}`).toMatchObject(each);
  const steps = events as Steps;
  const [pre, create, start, end] = steps;
  if (pre.heldBy === 'watchdog' && rec.tookOver()) console.log(`${label}: answered by the watchdog, the watcher having stalled\n${rec.context()}`);
  else expect({ held: pre.held, heldBy: pre.heldBy }, told).toEqual({ held: true, heldBy: 'watcher' });
  expect(pre.specError, label).toBeNull();
  expect(create.pid, label).toBeGreaterThan(0);
  expect(create.mntns, label).toBeGreaterThan(0);
  expect(create.cgroupId, label).toMatch(/^[1-9][0-9]*$/);
  expect(start.pid, label).toBe(create.pid);
  expect(BigInt(pre.monotonicNs), label).toBeLessThan(BigInt(start.monotonicNs));
  expect(BigInt(create.monotonicNs), label).toBeLessThan(BigInt(start.monotonicNs));
  expect(end, label).toMatchObject(exit);
  return steps;
}

/** One step, as a failed assertion tells it: what it is, when, and who answered a precreate. */
function stepOf(e: ContainerEvent): string {
  const answered = e.type === 'precreate' ? ` held=${e.held} heldBy=${e.heldBy ?? null} specError=${e.specError?.code ?? null}` : '';
  return `${e.type}@${e.monotonicNs}${answered}`;
}
