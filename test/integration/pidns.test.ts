// The watcher in a child pid namespace: fanotify reports the exec'ing thread as
// pid 0 (invisible), and the reactor must still pair each held exec with its argv.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, criAnnotations, privileged } from './harness.js';

const CLI = join(import.meta.dirname, '..', '..', 'bin', 'ocinotify');

interface Line {
  type: string;
  id?: string;
  held?: boolean;
  pod?: { name: string; namespace: string; uid: string } | null;
  runtime?: { argv: string[] };
}

describe.skipIf(!privileged())('watcher in a child pid namespace', () => {
  let lab: Lab;
  let cli: ChildProcess;
  const lines: Line[] = [];

  beforeAll(async () => {
    lab = new Lab();
    cli = spawn('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child=SIGTERM', process.execPath, CLI, 'watch', '--json'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buf = '';
    cli.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        lines.push(JSON.parse(buf.slice(0, nl)) as Line);
        buf = buf.slice(nl + 1);
      }
    });
    const deadline = Date.now() + 10_000;
    while (!lines.some((l) => l.type === 'ready')) {
      if (Date.now() > deadline) throw new Error('watcher never got ready');
      await new Promise((r) => setTimeout(r, 20));
    }
  });

  afterAll(async () => {
    // unshare ignores SIGTERM while it waits: stop the watcher it forked (pid 1 of the namespace).
    if (cli?.pid !== undefined && cli.exitCode === null) {
      const exited = new Promise((r) => cli.once('exit', r));
      const children = readFileSync(`/proc/${cli.pid}/task/${cli.pid}/children`, 'utf8').trim().split(' ');
      for (const pid of children.filter(Boolean)) process.kill(Number(pid), 'SIGTERM');
      await exited;
    }
    await lab?.cleanup();
  });

  it('pairs every held exec with its own argv, sequential and 4 in parallel', async () => {
    expect(lines[0]).toMatchObject({ type: 'ready', mode: 'full' });
    const ids = Array.from({ length: 12 }, (_, i) => `pidns-${i}`);
    const queue = [...ids];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
          const bundle = await lab.bundle(id, ['/bin/true'], criAnnotations(id));
          await lab.runc(['create', '--bundle', bundle, id]);
          await lab.runc(['start', id]);
        }
      }),
    );
    const deadline = Date.now() + 10_000;
    const done = () => ids.every((id) => lines.some((l) => l.id === id && l.type === 'exit'));
    while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const id of ids) {
      const pre = lines.filter((l) => l.id === id && l.type === 'precreate');
      expect(pre, id).toHaveLength(1);
      expect(pre[0]!.held).toBe(true);
      expect(pre[0]!.runtime!.argv.at(-1)).toBe(id);
      expect(pre[0]!.pod).toEqual({ name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` });
      expect(lines.filter((l) => l.id === id).map((l) => l.type)).toEqual(['precreate', 'create', 'start', 'exit']);
    }
  });
});
