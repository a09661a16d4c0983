// examples/: each one run as its README line says, against real runc containers.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Collected, Lab, criAnnotations, privileged, until } from '../kit/index.js';

const REPO = join(import.meta.dirname, '..', '..');
/** An example is plain JavaScript, run as users run it: loaded by path, typed here. */
const { privilegeOf } = (await import(join(REPO, 'examples', 'deny-privileged.mjs'))) as { privilegeOf: (spec: unknown) => string | null };

function example(file: string, args: string[]): Collected {
  return new Collected(process.execPath, [join(REPO, 'examples', file), ...args], REPO);
}

/** Rewrites a bundle's config.json through edit. */
function editSpec(bundle: string, edit: (spec: Record<string, any>) => void): string {
  const path = join(bundle, 'config.json');
  const spec = JSON.parse(readFileSync(path, 'utf8')) as Record<string, any>;
  edit(spec);
  writeFileSync(path, JSON.stringify(spec));
  return bundle;
}

describe('privilegeOf', () => {
  const base = { process: { capabilities: { bounding: ['CAP_KILL'] } }, linux: { namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'mount' }] } };
  it('tells CAP_SYS_ADMIN, all capabilities and host namespaces', () => {
    expect(privilegeOf(base)).toBeNull();
    expect(privilegeOf({ ...base, process: { capabilities: { bounding: ['CAP_SYS_ADMIN'] } } })).toBe('CAP_SYS_ADMIN');
    expect(privilegeOf({ ...base, process: { capabilities: { bounding: Array.from({ length: 41 }, (_, i) => `CAP_${i}`) } } })).toBe('all capabilities');
    expect(privilegeOf({ ...base, linux: { namespaces: [{ type: 'mount' }, { type: 'ipc' }] } })).toBe('host pid, network namespaces');
    expect(privilegeOf(null)).toBe('spec unreadable');
  });
});

describe.skipIf(!privileged())('examples against real runc', () => {
  let lab: Lab;
  beforeAll(() => {
    lab = new Lab();
  });
  afterAll(async () => {
    await lab?.cleanup();
  });

  it('deny-privileged.mjs denies privileged containers outside allowed namespaces', async () => {
    // The policy is node-wide: other containers on this node (without pod metadata) are let be.
    const policy = example('deny-privileged.mjs', ['--allow', 'kube-system', '--unlabelled', 'allow']);
    try {
      await until(() => /deny-privileged: full mode/.test(policy.stderr()), () => `the policy (stderr: ${policy.stderr()})`);
      const sysAdmin = (s: Record<string, any>) => s.process.capabilities.bounding.push('CAP_SYS_ADMIN');
      const hostNet = (s: Record<string, any>) => (s.linux.namespaces = s.linux.namespaces.filter((n: { type: string }) => n.type !== 'network'));
      const cases = [
        { id: 'ex-plain', edit: () => undefined, namespace: 'ex-tenant', allowed: true },
        { id: 'ex-sysadmin', edit: sysAdmin, namespace: 'ex-tenant', allowed: false },
        { id: 'ex-hostnet', edit: hostNet, namespace: 'ex-tenant', allowed: false },
        { id: 'ex-system', edit: sysAdmin, namespace: 'kube-system', allowed: true },
      ];
      for (const c of cases) {
        const annotations = { ...criAnnotations(c.id), 'io.kubernetes.cri.sandbox-namespace': c.namespace };
        const bundle = editSpec(lab.bundle(c.id, ['/bin/true'], annotations), c.edit);
        const created = lab.runc(['create', '--bundle', bundle, c.id]);
        if (c.allowed) await created;
        else await expect(created, c.id).rejects.toThrow(/exited 1/);
      }
      await until(() => cases.every((c) => policy.records().some((r) => r.id === c.id)), 'a verdict per container');
      for (const c of cases) {
        const record = policy.records().find((r) => r.id === c.id);
        expect(record, c.id).toMatchObject({ verdict: c.allowed ? 'allow' : 'deny', pod: { namespace: c.namespace } });
      }
      expect(policy.records().find((r) => r.id === 'ex-sysadmin')!.reason).toBe('privileged (CAP_SYS_ADMIN) in namespace ex-tenant');
      expect(policy.records().find((r) => r.id === 'ex-hostnet')!.reason).toBe('privileged (host network namespace) in namespace ex-tenant');
    } finally {
      policy.child.kill('SIGINT');
      expect(await policy.done).toBe(0);
      for (const id of ['ex-plain', 'ex-system']) await lab.runc(['delete', '--force', id]).catch(() => undefined);
    }
  });

  it('exec-tracer.mjs tags execs in a container with its pod, host execs with none', async () => {
    const tracer = example('exec-tracer.mjs', []);
    const id = 'ex-traced';
    try {
      await until(() => /exec-tracer: full mode/.test(tracer.stderr()), () => `the tracer (stderr: ${tracer.stderr()})`);
      const bundle = lab.bundle(id, ['/bin/sh', '-c', 'sleep 1.5; sleep 30'], criAnnotations(id));
      await lab.runc(['run', '--detach', '--bundle', bundle, id]);
      const host = spawn('/bin/sleep', ['1.7'], { stdio: 'ignore' });
      const isExec = (r: Record<string, unknown>, argv: string[]) => JSON.stringify(r.argv) === JSON.stringify(argv);
      await until(() => tracer.records().some((r) => isExec(r, ['sleep', '30'])), 'the second exec in the container', 15_000);
      const pod = { name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` };
      for (const argv of [['/bin/sh', '-c', 'sleep 1.5; sleep 30'], ['sleep', '1.5'], ['sleep', '30']])
        expect(tracer.records().find((r) => isExec(r, argv)), argv.join(' ')).toMatchObject({ id, pod, container: `c-${id}` });
      expect(tracer.records().find((r) => isExec(r, ['/bin/sleep', '1.7']) && r.pid === host.pid)).toMatchObject({ id: null, pod: null });
    } finally {
      tracer.child.kill('SIGINT');
      expect(await tracer.done).toBe(0);
      await lab.runc(['delete', '--force', id]).catch(() => undefined);
    }
  });
});
