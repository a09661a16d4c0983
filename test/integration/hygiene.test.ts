// Resource hygiene over many containers: after CONTAINERS `runc run`s of /bin/true the watcher's
// fds, fanotify marks, BPF map entries and pending state are back to their baseline; then
// close() leaves nothing (kernel-state.ts, as close.test.ts checks it); no zombie children.
// 10,000 containers take ~5 minutes on a 2-core machine: 1,000 keep `make test` reasonable.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, RUNC, ended, privileged, sq, timedShell, until } from '../kit/index.js';
import { Observer, runtimeFailures, zombieChildren } from './hostile.js';
import { kernelState, ownBpfIds, systemBpfIds } from './kernel-state.js';

const CONTAINERS = Number(process.env.OCINOTIFY_HYGIENE_CONTAINERS ?? 1000);
const WARMUP = 20;
const LOOPS = 2;
/** The BPF maps that hold per-process state (bpf/ocinotify.bpf.c), by name. */
const STATE_MAPS = ['sessions', 'lineage', 'containers', 'execs_in_flight'];

interface Snapshot {
  fds: number;
  fanotifyMarks: number;
  /** entries per state map */
  maps: Record<string, number>;
  /** entries whose process is gone: leaks, as LRU maps would only evict them under pressure */
  stale: Record<string, number[]>;
  sessions: number;
  containers: number;
  heldNow: number;
}

function ownMapIds(): number[] {
  const ids: number[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) !== 'anon_inode:bpf-map') continue;
      const id = /^map_id:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      if (id !== undefined) ids.push(Number(id));
    } catch {
      // closed meanwhile
    }
  }
  return ids;
}

function bpftool(args: string[]): unknown {
  return JSON.parse(execFileSync('bpftool', ['-j', ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }) || 'null');
}

/** Keys (tgids) of each state map this process holds. */
function stateMapKeys(): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const id of ownMapIds()) {
    const info = bpftool(['map', 'show', 'id', String(id)]) as { name?: string };
    if (info.name === undefined || !STATE_MAPS.includes(info.name)) continue;
    const entries = (bpftool(['map', 'dump', 'id', String(id)]) as { key: string[] }[] | null) ?? [];
    out[info.name] = entries.map((e) => Buffer.from(e.key.map((b) => Number.parseInt(b, 16))).readUInt32LE(0));
  }
  return out;
}

function fanotifyMarks(): number {
  let marks = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) !== 'anon_inode:[fanotify]') continue;
      marks += readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('fanotify ino:')).length;
    } catch {
      // closed meanwhile
    }
  }
  return marks;
}

/**
 * Entries of processes that are gone (reaped: /proc keeps zombies) and still in the map after.
 * A process that exits between the dump and the look in /proc has its entry deleted at its exit,
 * so the second dump tells a leak from that race.
 */
function staleKeys(first: Record<string, number[]>): Record<string, number[]> {
  const dead = Object.fromEntries(Object.entries(first).map(([k, v]) => [k, v.filter((pid) => !existsSync(`/proc/${pid}`))]));
  const second = stateMapKeys();
  return Object.fromEntries(Object.entries(dead).map(([k, v]) => [k, v.filter((pid) => second[k]?.includes(pid))]));
}

function snapshot(obs: Observer): Snapshot {
  const keys = stateMapKeys();
  const stats = obs.watcher.stats();
  return {
    fds: readdirSync('/proc/self/fd').length,
    fanotifyMarks: fanotifyMarks(),
    maps: Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, v.length])),
    stale: staleKeys(keys),
    sessions: stats.sessions,
    containers: stats.containers,
    heldNow: stats.heldNow,
  };
}

describe.skipIf(!privileged())(`hygiene over ${CONTAINERS.toLocaleString('en')} containers`, () => {
  let lab: Lab;
  const suffix = process.pid.toString(36);

  beforeAll(() => {
    lab = new Lab();
  });

  afterAll(async () => {
    await lab?.cleanup();
  });

  /** runc run /bin/true for each id, LOOPS shells at a time; resolves when all have exited. */
  async function runAll(bundle: string, ids: string[]): Promise<{ ms: number; failed: Set<string> }> {
    const loop = (part: string[]): string =>
      part.map((id) => `${RUNC} --root ${sq(lab.stateRoot)} run --bundle ${sq(bundle)} ${id} </dev/null >>${sq(lab.log)} 2>&1 || echo "fail ${id}: $(tail -n 1 ${sq(lab.log)})" >&2`).join('\n');
    const parts = Array.from({ length: LOOPS }, (_, k) => ids.filter((_, i) => i % LOOPS === k));
    // A file: the script is longer than one execve argument may be (128 KiB).
    const script = join(lab.dir, `run-${ids[0]}.sh`);
    writeFileSync(script, parts.map((p) => `(${loop(p)}) &`).join('\n') + '\nwait\n');
    const res = await timedShell(`/bin/sh ${sq(script)}`);
    return { ms: res.ms, failed: runtimeFailures(res.stderr) };
  }

  it('returns to baseline: fds, fanotify marks, BPF map entries, pending state; then close() frees everything', async () => {
    const beforeWatcher = kernelState();
    const obs = new Observer();
    const loaded = ownBpfIds();
    try {
      const bundle = lab.bundle('true', ['/bin/true'], null);
      const warm = Array.from({ length: WARMUP }, (_, i) => `hy-warm-${i}-${suffix}`);
      await runAll(bundle, warm);
      await obs.until((ev) => warm.every((id) => ended(ev, id)), 20_000);
      // Another tenant's create may be held at any moment (one event fd each): wait for a quiet one.
      await until(() => obs.watcher.stats().heldNow === 0, 'no held exec', 10_000);
      const base = snapshot(obs);
      console.log(`baseline: ${JSON.stringify(base)}`);

      const ids = Array.from({ length: CONTAINERS }, (_, i) => `hy-${i}-${suffix}`);
      const { ms, failed } = await runAll(bundle, ids);
      await obs.until((ev) => ids.every((id) => ended(ev, id)), 60_000);
      const mine = new Set([...warm, ...ids]);
      // Another tenant's containers (other tests on this machine) may be live in our tables.
      const foreignOpen = (): number => {
        const open = new Set<string>();
        for (const e of obs.events) {
          if (mine.has(e.id)) continue;
          if (['exit', 'failed', 'denied'].includes(e.type)) open.delete(e.id);
          else open.add(e.id);
        }
        return open.size;
      };
      await until(() => {
        const s = snapshot(obs);
        return s.sessions + s.containers <= base.sessions + base.containers + foreignOpen() && s.heldNow === 0;
      }, 'pending state back to baseline', 10_000);
      const after = snapshot(obs);
      console.log(`after ${CONTAINERS} containers in ${(ms / 1000).toFixed(1)} s: ${JSON.stringify(after)}`);

      console.log(`runc itself failed ${failed.size} of them (the machine, not the watcher: ${[...failed.values()][0] ?? '-'})`);
      expect(failed.size).toBeLessThan(CONTAINERS / 10);
      const missed = ids.filter((id) => obs.types(id).join() !== (failed.has(id) ? 'precreate,failed' : 'precreate,create,start,exit'));
      expect(missed.map((id) => [id, obs.types(id)])).toEqual([]);
      expect(after.fds - after.heldNow).toBe(base.fds - base.heldNow);
      expect(after.fanotifyMarks).toBe(base.fanotifyMarks);
      expect(after.stale).toEqual(Object.fromEntries(STATE_MAPS.map((m) => [m, []])));
      for (const m of STATE_MAPS) expect(after.maps[m] ?? 0, m).toBeLessThanOrEqual((base.maps[m] ?? 0) + foreignOpen() * 4);
      // No growth but another tenant's (a runtime of theirs may also have been live at baseline).
      expect(after.sessions).toBeLessThanOrEqual(base.sessions + foreignOpen());
      expect(after.containers).toBeLessThanOrEqual(base.containers + foreignOpen());
      expect(zombieChildren()).toEqual([]);
      obs.expectSound();
    } finally {
      obs.close();
    }
    await until(() => {
      const sys = systemBpfIds();
      return !sys.progs.some((id) => loaded.progs.includes(id)) && !sys.links.some((id) => loaded.links.includes(id));
    }, 'the kernel to free our BPF programs and links', 5000);
    expect(kernelState()).toEqual(beforeWatcher);
    expect(zombieChildren()).toEqual([]);
  });
});
