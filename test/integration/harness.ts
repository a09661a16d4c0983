// What the integration tests assert about a container's steps, on top of the kit (test/kit/).
import { expect } from 'vitest';
import type { ContainerEvent } from '../../src/index.js';

type Steps = [ContainerEvent, ContainerEvent, ContainerEvent, ContainerEvent];

/**
 * One container's four steps, once each and in order, each matching `each` (what it should have
 * been resolved to); the precreate held with its spec read, start and exit in create's pid, and
 * the exit as `exit` says. Returns the steps for what is particular to a manager.
 */
export function expectSteps(events: ContainerEvent[], label: string, each: object, exit: Partial<ContainerEvent>): Steps {
  expect(events.map((e) => e.type), label).toEqual(['precreate', 'create', 'start', 'exit']);
  for (const e of events) expect(e, `${label} ${e.type}`).toMatchObject(each);
  const steps = events as Steps;
  const [pre, create, start, end] = steps;
  expect(pre.held, label).toBe(true);
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
