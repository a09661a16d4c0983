// Every fixture captured from a real run (test/fixtures/replay/, `make replay-fixtures`) replayed
// through a fresh watcher without root: the same events in the same order with the same fields,
// the same control calls and reads. `make test` runs these as root and again as nobody.
import { describe, expect, it } from 'vitest';
import type { LifecycleType } from '../../src/index.js';
import type { NativeRecord } from '../../src/native.js';
import { CHANNELS, comparable, CONTROL_METHODS, fixtureNames, readFixture, type Channel, type Fixture } from './fixture.js';
import { ReplayPort } from './replay-port.js';
import { expectFaithful, recordedCalls, replay } from './replay.js';
import { eventsOf, scenario, SCENARIOS } from './scenarios.js';

const fixtures = new Map<string, Fixture>();
const replays = new Map<string, Promise<ReplayPort>>();

function fixture(name: string): Fixture {
  if (!fixtures.has(name)) fixtures.set(name, readFixture(name));
  return fixtures.get(name)!;
}

/** Each fixture replayed once for the whole file. */
function replayed(name: string): Promise<ReplayPort> {
  if (!replays.has(name)) replays.set(name, replay(fixture(name)));
  return replays.get(name)!;
}

const LIFECYCLE: readonly LifecycleType[] = ['precreate', 'create', 'start', 'exit', 'denied', 'failed', 'existing'];
/**
 * A full ring buffer is the only source of `lost`: no scenario makes one (its storm would be
 * megabytes), so the test below adds the reactor's record to a recorded stream.
 */
const UNCOVERED: readonly Channel[] = ['lost', 'error'];

it('has a fixture for every scenario and a scenario for every fixture', () => {
  expect(fixtureNames()).toEqual(SCENARIOS.map((s) => s.name).sort());
});

describe.each(fixtureNames())('%s', (name) => {
  it('shows what its scenario is for', () => {
    scenario(name).check(fixture(name).emitted);
  });

  it('replays: every event in order with its fields, the same control calls, every read recorded', async () => {
    expectFaithful(fixture(name), await replayed(name));
  });
});

describe('coverage', () => {
  it('the replays emit every lifecycle event type', async () => {
    const types = new Set<string>();
    for (const name of fixtureNames()) for (const e of eventsOf((await replayed(name)).emitted)) types.add(e.type);
    expect([...types].sort()).toEqual([...LIFECYCLE].sort());
  });

  it('the replays emit on every channel but lost and error', async () => {
    const channels = new Set<string>();
    for (const name of fixtureNames()) for (const e of (await replayed(name)).emitted) channels.add(e.on);
    expect([...channels].sort()).toEqual(CHANNELS.filter((c) => !UNCOVERED.includes(c)).sort());
  });

  it('the replays make every control call', async () => {
    const calls = new Set<string>();
    for (const name of fixtureNames()) for (const c of (await replayed(name)).calls) calls.add(c.call);
    expect([...calls].sort()).toEqual([...CONTROL_METHODS].sort());
  });

  it('the fixtures hold both answers a gate gives', () => {
    const answers = fixtureNames().flatMap((name) => recordedCalls(fixture(name)).filter((c) => c.call === 'answer'));
    expect(answers.map((c) => `${String(c.args[1])}:${String(c.result)}`)).toEqual(expect.arrayContaining(['true:true', 'false:true']));
  });
});

describe('a lost record', () => {
  it('is a lost event in its place in the stream, with the count and the reason the reactor gave', async () => {
    const fixture = readFixture('runc');
    const at = fixture.log.findIndex((e) => 'batch' in e && e.batch.length > 0);
    const log = [...fixture.log];
    const lost: NativeRecord = { kind: 'lost', count: 3, reason: 'ringbuf-full' };
    log.splice(at + 1, 0, { batch: [lost] });
    const port = await replay({ ...fixture, log });
    const recorded = (await replayed('runc')).emitted.map(comparable);
    const index = port.emitted.findIndex((e) => e.on === 'lost');
    expect(port.emitted[index]!.payload).toMatchObject({ type: 'lost', count: 3, reason: 'ringbuf-full' });
    expect(port.emitted.filter((_, i) => i !== index).map(comparable)).toEqual(recorded);
    const before = log.slice(0, at + 1).filter((e) => 'batch' in e).length;
    expect(port.emitted[index]!.batch).toBe(before + 1);
    expect(port.emitted.slice(0, index).every((e) => e.batch <= before)).toBe(true);
  });
});

describe('the replay port', () => {
  it('lists a read the recording lacks', async () => {
    const fixture = readFixture('runc');
    const missing = fixture.log.findIndex((e) => 'read' in e && e.read === 'readFileInRoot');
    const port = await replay({ ...fixture, log: fixture.log.filter((_, i) => i !== missing) });
    expect(port.problems.join('\n')).toMatch(/^read never recorded: readFileInRoot /m);
  });

  it('lists a recorded read the watcher never asked', async () => {
    const fixture = readFixture('runc');
    const port = new ReplayPort({ ...fixture, log: [...fixture.log, { read: 'readlink', args: ['/nowhere'], result: null }] }, 50);
    const watcher = port.watch();
    await port.done;
    watcher.close();
    expect(port.problems).toEqual(['recorded reads never asked by the end: readlink ["/nowhere"]']);
  });
});
