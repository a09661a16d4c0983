// Replaying a fixture through a fresh watcher, and what "the same run" means: the same
// emissions in the same order with the same fields (all but the wall clock), the same control
// calls with the same answers after the same batches, the same reactor options, and every
// read the recording has asked again - none it lacks.
import { expect } from 'vitest';
import { comparable, type Fixture, type LogEntry } from './fixture.js';
import { ReplayPort } from './replay-port.js';

/** Runs the whole fixture through a watcher on a ReplayPort and closes it. */
export async function replay(fixture: Fixture): Promise<ReplayPort> {
  const port = new ReplayPort(fixture);
  const watcher = port.watch();
  await port.done;
  watcher.close();
  return port;
}

export function recordedCalls(fixture: Fixture): Extract<LogEntry, { call: string }>[] {
  return fixture.log.filter((e): e is Extract<LogEntry, { call: string }> => 'call' in e);
}

export function expectFaithful(fixture: Fixture, port: ReplayPort): void {
  const label = fixture.scenario;
  expect(port.problems, `${label}: reads`).toEqual([]);
  expect(port.opened, `${label}: reactor options`).toEqual(fixture.opened);
  expect(port.emitted.map(comparable), `${label}: emissions`).toEqual(fixture.emitted.map(comparable));
  expect(port.calls, `${label}: control calls`).toEqual(recordedCalls(fixture));
}
