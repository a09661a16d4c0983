// Nothing is reported after close(): not from batches the thread-safe function had queued (they
// still arrive), not from the rest of a batch a listener closed the watcher in.
import { describe, expect, it } from 'vitest';
import { comparable, fixtureNames, readFixture, type Fixture } from './fixture.js';
import { ReplayPort } from './replay-port.js';
import { replay } from './replay.js';

/** The fixture with all its records in one batch where its first batch was: one long onBatch call. */
function inOneBatch(fixture: Fixture): Fixture {
  const records = fixture.log.flatMap((e) => ('batch' in e ? e.batch : []));
  const first = fixture.log.findIndex((e) => 'batch' in e);
  const log = fixture.log.filter((e) => !('batch' in e));
  log.splice(first, 0, { batch: records });
  return { ...fixture, log };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe.each(fixtureNames())('%s', (name) => {
  it('emits nothing for batches delivered after close()', async () => {
    const fixture = readFixture(name);
    const port = await replay(fixture);
    const before = port.emitted.length;
    expect(before).toBeGreaterThan(0);
    for (const batch of port.recordedBatches) port.deliver(batch);
    await turn();
    expect(port.emitted.slice(before)).toEqual([]);
  });
});

/**
 * A runc copy installed, a container run through it, the copy removed: the removal's `runtime`
 * emission does not go through the event path's own closed check, only through onBatch's.
 */
describe('a listener that closes the watcher mid-batch', () => {
  const fixture = inOneBatch(readFixture('runtime-change'));
  let whole: ReplayPort;

  it('would otherwise see more from later records of that batch, runtime changes among them', async () => {
    whole = await replay(fixture);
    const first = whole.emitted.findIndex((e) => e.on === 'event');
    const later = whole.emitted.slice(first + 1);
    expect(later.map((e) => e.batch)).toContain(1);
    expect(later.map((e) => e.on)).toContain('runtime');
    expect(new Set(later.map((e) => e.payload.monotonicNs)).size).toBeGreaterThan(1);
  });

  it('stops the rest of the batch', async () => {
    const port = new ReplayPort(fixture);
    const watcher = port.watch();
    watcher.once('event', () => watcher.close());
    await port.done;
    await turn();
    const first = whole.emitted.findIndex((e) => e.on === 'event');
    expect(port.emitted.map(comparable)).toEqual(whole.emitted.slice(0, first + 1).map(comparable));
  });
});
