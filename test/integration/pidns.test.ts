// The watcher in a child pid namespace: fanotify reports the exec'ing thread as
// pid 0 (invisible), and the reactor must still pair each held exec with its argv.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, criAnnotations, ocinotify, privileged, until, type Collected } from '../kit/index.js';

interface Line {
  type: string;
  id?: string;
  held?: boolean;
  pod?: { name: string; namespace: string; uid: string } | null;
  runtime?: { argv: string[] };
}

describe.skipIf(!privileged())('watcher in a child pid namespace', () => {
  let lab: Lab;
  let cli: Collected;
  const lines = (): Line[] => cli.records<Line>();

  beforeAll(async () => {
    lab = new Lab();
    cli = ocinotify(['watch', '--json'], ['unshare', '--pid', '--fork', '--mount-proc', '--kill-child=SIGTERM']);
    await until(() => lines().some((l) => l.type === 'ready'), () => `the watcher to be ready (stderr: ${cli.stderr()})`);
  });

  afterAll(async () => {
    // unshare ignores SIGTERM while it waits: stop the watcher it forked (pid 1 of the namespace).
    const { pid, exitCode } = cli?.child ?? {};
    if (pid !== undefined && exitCode === null) {
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ');
      for (const child of children.filter(Boolean)) process.kill(Number(child), 'SIGTERM');
      await cli.done;
    }
    await lab?.cleanup();
  });

  it('pairs every held exec with its own argv, sequential and 4 in parallel', async () => {
    expect(lines()[0]).toMatchObject({ type: 'ready', mode: 'full' });
    const ids = Array.from({ length: 12 }, (_, i) => `pidns-${i}`);
    const queue = [...ids];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
          const bundle = lab.bundle(id, ['/bin/true'], criAnnotations(id));
          await lab.runc(['create', '--bundle', bundle, id]);
          await lab.runc(['start', id]);
        }
      }),
    );
    const exited = (id: string): boolean => lines().some((l) => l.id === id && l.type === 'exit');
    await until(() => ids.every(exited), () => `the exits of ${ids.filter((id) => !exited(id)).join(', ')}`);
    for (const id of ids) {
      const pre = lines().filter((l) => l.id === id && l.type === 'precreate');
      expect(pre, id).toHaveLength(1);
      expect(pre[0]!.held).toBe(true);
      expect(pre[0]!.runtime!.argv.at(-1)).toBe(id);
      expect(pre[0]!.pod).toEqual({ name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` });
      expect(lines().filter((l) => l.id === id).map((l) => l.type)).toEqual(['precreate', 'create', 'start', 'exit']);
    }
  });
});
