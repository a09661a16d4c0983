// Pressure: what the kernel could not hand over is counted and reported as `lost`, never
// silent; a storm of unrelated execs next to container creates costs no container.
import { copyFileSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, RUNC, criAnnotations, ended, lifecycle, privileged, sq, timedShell, until } from '../kit/index.js';
import { FrozenThread, newReactorTid, reactorTids } from './freeze.js';
import { Observer, buildTools, runtimeFailures, stormResult, type Tools } from './hostile.js';

const CREATES = 200;
const STORM_RATE = 20_000;
const STORM_WORKERS = 8;
/** FAN_UNLIMITED_QUEUE, as fdinfo shows the group's init flags */
const FAN_UNLIMITED_QUEUE = 0x10;

/** fdinfo of this process's fanotify groups. */
function fanotifyInfos(): string[] {
  const infos: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[fanotify]') infos.push(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    } catch {
      // closed meanwhile
    }
  }
  return infos;
}

describe.skipIf(!privileged())('pressure', () => {
  let lab: Lab;
  let tools: Tools;
  const suffix = process.pid.toString(36);

  beforeAll(() => {
    lab = new Lab();
    tools = buildTools(lab.dir);
  });

  afterAll(async () => {
    await lab?.cleanup();
  });

  it('a full ring buffer is counted and reported as lost, with the count', async () => {
    // ebpf-only: nothing is held, so a stopped reactor delays no one's runtime.
    const obs = new Observer({ mode: 'ebpf-only' });
    try {
      const tids = [await newReactorTid([])];
      expect(reactorTids()).toEqual(tids);
      const frozen = await FrozenThread.freeze(tids[0]!);
      // A binary named like a runtime: each exec is an 8.5 KiB argv record; 16 MiB hold ~1,970.
      const fake = join(lab.dir, 'runc');
      copyFileSync(tools.tiny, fake);
      const storm = await timedShell(`${sq(tools.storm)} 4000 2 0 ${sq(fake)} create`);
      expect(storm.code, storm.stderr).toBe(0);
      await frozen.resume();
      await until(() => obs.lost.length > 0, 'a lost event', 5000);
      await obs.fence(lab);
      const total = obs.lost.reduce((n, l) => n + l.count, 0);
      const stats = obs.watcher.stats();
      console.log(`4,000 runtime-named execs against a stopped reactor: lost ${total} (${obs.lost.length} lost events), ringbufFull ${stats.ringbufFull}`);
      expect(obs.lost.every((l) => l.reason === 'ringbuf-full')).toBe(true);
      expect(total).toBe(stats.ringbufFull);
      expect(total).toBeGreaterThan(1000);
      // A runtime-named file exec'd by root is followed as a runtime (README, "Runtimes
      // anywhere"): its argv at entry, its exec and its exit, three records an exec at most.
      expect(total).toBeLessThanOrEqual(3 * 4000);
      // and it goes on working
      const id = `pr-after-lost-${suffix}`;
      await lifecycle(lab, obs, id, lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id)));
      expect(obs.types(id)).toEqual(['precreate', 'create', 'start', 'exit']);
      obs.expectSound();
    } finally {
      obs.close();
    }
  });

  it('the fanotify queue is unlimited: a burst of 1,000 concurrent held-binary execs loses nothing', async () => {
    const obs = new Observer();
    try {
      const infos = fanotifyInfos();
      expect(infos).toHaveLength(1);
      const flags = Number.parseInt(/fanotify flags:([0-9a-f]+)/.exec(infos[0]!)?.[1] ?? '0', 16);
      expect(flags & FAN_UNLIMITED_QUEUE).toBe(FAN_UNLIMITED_QUEUE);
      const before = obs.watcher.stats();
      const storm = await timedShell(`${sq(tools.storm)} 1000 50 0 ${RUNC} --version >/dev/null`);
      expect(storm.code, storm.stderr).toBe(0);
      await obs.fence(lab);
      const after = obs.watcher.stats();
      console.log(`1,000 runc --version over 50 processes in ${storm.ms} ms, answered natively ${after.answeredNative - before.answeredNative}, queue overflows ${after.queueOverflow}`);
      expect(after.answeredNative - before.answeredNative).toBeGreaterThanOrEqual(1000);
      expect(after.queueOverflow).toBe(0);
      expect(obs.lost).toEqual([]);
      obs.expectSound();
    } finally {
      obs.close();
    }
  });

  it(`a storm of unrelated execs (target ${STORM_RATE.toLocaleString('en')}/s) alongside ${CREATES} container creates: none missed`, async () => {
    const obs = new Observer();
    try {
      const ids = Array.from({ length: CREATES }, (_, i) => `pr-storm-${i}-${suffix}`);
      const bundle = lab.bundle('storm', ['/bin/true'], null);
      // Two shells run the containers, one after another each: runc run of /bin/true.
      const loop = (part: string[]): string =>
        part.map((id) => `${RUNC} --root ${sq(lab.stateRoot)} run --bundle ${sq(bundle)} ${id} </dev/null >>${sq(lab.log)} 2>&1 || echo "fail ${id}: $(tail -n 1 ${sq(lab.log)})" >&2`).join('\n');
      const stormOut = join(lab.dir, 'storm.out');
      const res = await timedShell(
        `${sq(tools.storm)} ${STORM_RATE * 600} ${STORM_WORKERS} ${STORM_RATE} ${sq(tools.tiny)} >${sq(stormOut)} & storm=$!; sleep 1; ` +
          `(${loop(ids.filter((_, i) => i % 2 === 0))}) & a=$!; (${loop(ids.filter((_, i) => i % 2 === 1))}); wait $a; kill -TERM $storm; wait $storm`,
      );
      const failed = runtimeFailures(res.stderr);
      expect(failed.size).toBeLessThan(CREATES / 10);
      const storm = stormResult(readFileSync(stormOut, 'utf8'));
      await obs.until((ev) => ids.every((id) => ended(ev, id)), 30_000).catch(() => undefined);
      const missing = ids.filter((id) => obs.types(id).join() !== (failed.has(id) ? 'precreate,failed' : 'precreate,create,start,exit'));
      const execs = obs.watcher.stats();
      console.log(
        `${CREATES} runc run in ${(res.ms / 1000).toFixed(1)} s next to ${storm.count} unrelated execs in ${storm.seconds.toFixed(1)} s ` +
          `(${storm.perSecond}/s, target ${STORM_RATE}/s): ` +
          `missed ${missing.length}; runc itself failed ${failed.size}; lost ${obs.lost.reduce((n, l) => n + l.count, 0)}; held ${execs.held}`,
      );
      expect(missing.map((id) => [id, obs.types(id)])).toEqual([]);
      expect(obs.lost).toEqual([]);
      obs.expectSound();
    } finally {
      obs.close();
    }
  });
});
