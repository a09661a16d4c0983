// The snapshot of containers already running at start, and its second scan: it waits for the
// runtimes alive at start to exit, and meanwhile the stream follows new containers. A container
// the stream followed and saw exit is never reported again as `existing`, even when its state
// and its unreaped init (a zombie under a busy shim or conmon) are still there at that scan.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, RUNC, Recorder, criAnnotations, privileged, sleep, sq, until } from '../kit/index.js';

const SUBREAPER = new URL('./processes/subreaper.py', import.meta.url).pathname;

/** The state letter of /proc/PID/stat, or null once the pid is gone. */
function stateOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

/** Resolves once child has exited. */
function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

describe.skipIf(!privileged())('the snapshot of running containers', () => {
  let lab: Lab;
  let rec: Recorder | undefined;
  const children: ChildProcess[] = [];

  beforeAll(() => {
    lab = new Lab('ocinotify-snapshot-');
  });

  afterAll(async () => {
    rec?.close();
    for (const c of children) {
      c.stdin?.end();
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await exited(c);
    }
    await lab?.cleanup();
  });

  it('does not report a container the stream followed and saw exit as existing, its init a zombie at the second scan', async () => {
    const suffix = process.pid.toString(36);
    // A runtime alive at start: a foreground `runc run`, alive as long as its container. The
    // snapshot scans again once it has exited.
    const before = `snap-before-${suffix}`;
    const bundleBefore = lab.bundle(before, ['/bin/sleep', '60'], criAnnotations(before));
    const running = spawn('/bin/sh', ['-c', `exec ${sq(RUNC)} --root ${sq(lab.stateRoot)} run --bundle ${sq(bundleBefore)} ${sq(before)} </dev/null >>${sq(lab.log)} 2>&1`], {
      stdio: 'ignore',
    });
    children.push(running);
    await until(() => lab.runc(['state', before]).then((s) => (JSON.parse(s) as { status: string }).status === 'running', () => false), () => `${before} running`);

    rec = new Recorder({ stateRoots: [lab.stateRoot] });
    const watched = rec;
    await watched.until((ev) => ev.some((e) => e.id === before && e.type === 'existing'));

    // Created under a subreaper that does not reap: once killed, its init stays a zombie.
    const id = `snap-followed-${suffix}`;
    const bundle = lab.bundle(id, ['/bin/sleep', '60'], criAnnotations(id));
    const create = `exec ${sq(RUNC)} --root ${sq(lab.stateRoot)} create --bundle ${sq(bundle)} ${sq(id)} </dev/null >>${sq(lab.log)} 2>&1`;
    const reaper = spawn('python3', [SUBREAPER, '/bin/sh', '-c', create], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(reaper);
    let said = '';
    reaper.stdout!.on('data', (b: Buffer) => (said += b.toString()));
    await until(() => said.includes('ran '), () => `runc create under the subreaper: ${said}`);
    expect(said.trim()).toBe('ran 0');
    await lab.runc(['start', id]);
    await watched.until((ev) => ev.some((e) => e.id === id && e.type === 'start'));
    await lab.runc(['kill', id, 'KILL']);
    await watched.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'));
    const initPid = watched.of(id, 'create')[0]!.pid!;
    await until(() => stateOf(initPid) === 'Z', () => `init ${initPid} of ${id} a zombie: ${stateOf(initPid)}`);

    // The runtime alive at start exits: the second scan follows within its 50 ms poll, and finds
    // the followed container's state and its init's /proc entry.
    await lab.runc(['kill', before, 'KILL']);
    await exited(running);
    await watched.until((ev) => ev.some((e) => e.id === before && e.type === 'exit'));
    await sleep(500);
    expect(stateOf(initPid), 'still a zombie at the second scan').toBe('Z');
    expect(JSON.parse(await lab.runc(['state', id])) as object, 'its state still there').toMatchObject({ id, status: 'stopped' });

    expect(watched.of(id).map((e) => e.type), watched.context()).toEqual(['precreate', 'create', 'start', 'exit']);
    expect(watched.of(before).map((e) => e.type), watched.context()).toEqual(['existing', 'exit']);

    reaper.stdin!.end();
    await exited(reaper);
    expect(stateOf(initPid)).toBeNull();
    await lab.runc(['delete', id]);
  });
});
