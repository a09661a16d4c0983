// A tracer that tags every exec on the node with the pod it ran in, keyed by mount namespace.
//
//   node examples/exec-tracer.mjs [--interval-ms 20]      (NDJSON on stdout, as root)
//
// The key: a container's processes share its mount namespace, and the kernel names it by an
// inode number - `stat -L /proc/PID/ns/mnt`, or task->nsproxy->mnt_ns->ns.inum inside a BPF
// program. The watcher reports that number (`mntns`) with the pod on `create` and `existing`,
// before the container's first instruction, so a tracer keys its own events by mntns and
// looks the pod up, with no API server and no per-event cgroup parsing.
//
// This tracer's own exec events come from sampling /proc (a new pid, or a pid whose
// executable or argv changed): runnable anywhere, but it misses processes shorter than the
// interval. A production tracer gets them from its own BPF program (sched_process_exec,
// emitting the mntns inode) and keys them exactly like `tag()` below.
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { ContainerWatcher } from 'ocinotify';

/** mntns inode -> the container behind it, from the watcher's events; forgotten at exit. */
export class PodsByMntns {
  #byMntns = new Map();

  constructor(watcher) {
    const learn = (e) => {
      if (e.mntns !== null) this.#byMntns.set(e.mntns, { id: e.id, pod: e.pod, container: e.container.name });
    };
    watcher.on('existing', learn);
    watcher.on('create', learn);
    watcher.on('start', learn);
    watcher.on('exit', (e) => {
      if (e.mntns !== null && this.#byMntns.get(e.mntns)?.id === e.id) this.#byMntns.delete(e.mntns);
    });
  }

  /** The container of a mount namespace, or null (the host's, or a namespace no runtime made). */
  lookup(mntns) {
    return this.#byMntns.get(mntns) ?? null;
  }
}

/** Exec events sampled from /proc: { pid, mntns, exe, argv } for each new or re-exec'd process. */
export function* sampleExecs(seen, procRoot = '/proc') {
  const alive = new Set();
  for (const name of readdirSync(procRoot)) {
    if (!/^\d+$/.test(name)) continue;
    const dir = `${procRoot}/${name}`;
    try {
      const exe = readlinkSync(`${dir}/exe`);
      const argv = readFileSync(`${dir}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const mntns = statSync(`${dir}/ns/mnt`).ino;
      const key = `${exe}\0${argv.join('\0')}`;
      alive.add(name);
      if (seen.get(name) === key) continue;
      seen.set(name, key);
      yield { pid: Number(name), mntns, exe, argv };
    } catch {
      // a kernel thread, or gone meanwhile
    }
  }
  for (const pid of seen.keys()) if (!alive.has(pid)) seen.delete(pid);
}

/** An exec event tagged with its pod; an exec in an unknown namespace waits graceMs for the watcher's `create`. */
export function tag(pods, exec) {
  const c = pods.lookup(exec.mntns);
  return { ...exec, time: new Date().toISOString(), id: c?.id ?? null, pod: c?.pod ?? null, container: c?.container ?? null };
}

async function main() {
  const { values } = parseArgs({ options: { 'interval-ms': { type: 'string', default: '20' }, 'grace-ms': { type: 'string', default: '500' } } });
  const watcher = new ContainerWatcher();
  const pods = new PodsByMntns(watcher);
  const hostMntns = statSync('/proc/self/ns/mnt').ino;
  const seen = new Map();
  for (const _ of sampleExecs(seen)); // what runs now is not an exec we saw happen
  let pending = [];
  const tick = () => {
    const now = Date.now();
    const waiting = [];
    for (const p of [...pending, ...[...sampleExecs(seen)].map((exec) => ({ exec, since: now }))]) {
      // An exec in a container the watcher has not reported yet (its `create` is on its way).
      if (p.exec.mntns !== hostMntns && pods.lookup(p.exec.mntns) === null && now - p.since < Number(values['grace-ms'])) waiting.push(p);
      else process.stdout.write(`${JSON.stringify(tag(pods, p.exec))}\n`);
    }
    pending = waiting;
  };
  const timer = setInterval(tick, Number(values['interval-ms']));
  const stop = () => {
    clearInterval(timer);
    watcher.close();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  console.error(`exec-tracer: ${watcher.mode} mode, sampling /proc every ${values['interval-ms']} ms`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
