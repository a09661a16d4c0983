// CRI-O and youki have no Debian package: the real conmon and the real runc binary stand in,
// runc copied to CRI-O's own path (/usr/libexec/crio/runc, under a private prefix) and to
// youki's name. conmon is exec'd the way CRI-O execs it; the bundles carry CRI-O's full
// annotation set (BRIEF section 2) in containers/storage's layout.
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRIO_KEYS, KUBELET_KEYS } from '../../src/annotations/index.js';
import type { ContainerEvent, ContainerType } from '../../src/index.js';
import { Lab, RUNC, Recorder, deleteWhenStopped, execRuntime, privileged, until } from '../kit/index.js';

const CONMON = '/usr/bin/conmon';

interface Pod {
  name: string;
  namespace: string;
  uid: string;
  sandboxId: string;
  labels: Record<string, string>;
}

interface Expected {
  id: string;
  type: ContainerType;
  name: string;
  image: string;
  pod: Pod;
  labels: Record<string, string>;
  restartCount: number | null;
}

const hexId = (): string => randomBytes(32).toString('hex');
const CREATED = '2026-01-01T00:00:00.000000000Z';
const PAUSE = 'registry.k8s.io/pause:3.9';

/** What CRI-O writes on a pod's infra container (server/sandbox_run_linux.go). */
function sandboxAnnotations(pod: Pod, logDir: string): Record<string, string> {
  const sandboxName = `k8s_${pod.name}_${pod.namespace}_${pod.uid}_0`;
  const labels = {
    ...pod.labels,
    [KUBELET_KEYS.podName]: pod.name,
    [KUBELET_KEYS.podNamespace]: pod.namespace,
    [KUBELET_KEYS.podUid]: pod.uid,
  };
  const kubeAnnotations = { 'kubernetes.io/config.source': 'api', 'kubernetes.io/config.seen': CREATED };
  return {
    ...kubeAnnotations,
    [CRIO_KEYS.containerManager]: 'cri-o',
    [CRIO_KEYS.containerId]: pod.sandboxId,
    [CRIO_KEYS.containerName]: `k8s_POD_${pod.name}_${pod.namespace}_${pod.uid}_0`,
    [CRIO_KEYS.containerType]: 'sandbox',
    [CRIO_KEYS.sandboxId]: pod.sandboxId,
    [CRIO_KEYS.sandboxName]: sandboxName,
    [CRIO_KEYS.name]: sandboxName,
    [CRIO_KEYS.image]: PAUSE,
    [CRIO_KEYS.imageName]: PAUSE,
    [CRIO_KEYS.labels]: JSON.stringify(labels),
    [CRIO_KEYS.annotations]: JSON.stringify(kubeAnnotations),
    [CRIO_KEYS.kubeName]: pod.name,
    [CRIO_KEYS.namespace]: pod.namespace,
    [CRIO_KEYS.logPath]: join(logDir, `${pod.sandboxId}.log`),
    [CRIO_KEYS.created]: CREATED,
    [CRIO_KEYS.hostName]: 'node-1',
    [CRIO_KEYS.cgroupParent]: `kubepods-besteffort-pod${pod.uid.replaceAll('-', '_')}.slice`,
    [CRIO_KEYS.runtimeHandler]: '',
    [CRIO_KEYS.privilegedRuntime]: 'false',
  };
}

/** What CRI-O writes on a container (server/container_create_linux.go), kubelet keys included. */
function containerAnnotations(pod: Pod, c: { id: string; name: string; type: ContainerType; image: string; attempt: number }, logDir: string, handler: string): Record<string, string> {
  const containerName = `k8s_${c.name}_${pod.name}_${pod.namespace}_${pod.uid}_${c.attempt}`;
  const labels = {
    [KUBELET_KEYS.containerName]: c.name,
    [KUBELET_KEYS.podName]: pod.name,
    [KUBELET_KEYS.podNamespace]: pod.namespace,
    [KUBELET_KEYS.podUid]: pod.uid,
  };
  const kubeAnnotations = {
    [KUBELET_KEYS.containerHash]: 'b1f6a2c4',
    [KUBELET_KEYS.restartCount]: String(c.attempt),
    [KUBELET_KEYS.containerType]: c.type,
    'io.kubernetes.container.terminationMessagePath': '/dev/termination-log',
  };
  return {
    ...kubeAnnotations,
    [CRIO_KEYS.containerManager]: 'cri-o',
    [CRIO_KEYS.containerId]: c.id,
    [CRIO_KEYS.containerName]: containerName,
    [CRIO_KEYS.name]: containerName,
    [CRIO_KEYS.containerType]: 'container',
    [CRIO_KEYS.sandboxId]: pod.sandboxId,
    [CRIO_KEYS.sandboxName]: `k8s_POD_${pod.name}_${pod.namespace}_${pod.uid}_0`,
    [CRIO_KEYS.image]: c.image,
    // empty when the image was referenced by id: Image must win
    [CRIO_KEYS.imageName]: '',
    [CRIO_KEYS.imageRef]: 'docker.io/library/busybox@sha256:7b3ccabffc97de872a30dfd234fd972a66d247c8cfc69b0550f276481852627c',
    [CRIO_KEYS.labels]: JSON.stringify(labels),
    [CRIO_KEYS.annotations]: JSON.stringify(kubeAnnotations),
    [CRIO_KEYS.logPath]: join(logDir, c.name, `${c.attempt}.log`),
    [CRIO_KEYS.created]: CREATED,
    [CRIO_KEYS.runtimeHandler]: handler,
    [CRIO_KEYS.tty]: 'false',
    [CRIO_KEYS.stdin]: 'false',
  };
}

describe.skipIf(!privileged())('CRI-O (conmon -> runc as CRI-O installs it) and youki (a renamed runc)', () => {
  let lab: Lab;
  let rec: Recorder;
  let dir: string;
  let crioRunc: string;
  let youki: string;
  const expected: Expected[] = [];
  const suffix = process.pid.toString(36);

  beforeAll(() => {
    lab = new Lab();
    dir = mkdtempSync(join(tmpdir(), 'ocinotify-crio-'));
    crioRunc = join(dir, 'usr/libexec/crio/runc');
    youki = join(dir, 'usr/bin/youki');
    for (const path of [crioRunc, youki]) {
      mkdirSync(dirname(path), { recursive: true });
      copyFileSync(RUNC, path);
    }
    rec = new Recorder({ runtimePaths: [crioRunc, youki] });
  });

  afterAll(async () => {
    rec?.close();
    for (const runtime of [crioRunc, youki]) {
      const list = await execRuntime(RUNC, ['--root', stateRoot(runtime), 'list', '-q'], lab.log).catch(() => '');
      for (const id of list.split('\n').filter(Boolean))
        await execRuntime(RUNC, ['--root', stateRoot(runtime), 'delete', '--force', id], lab.log).catch(() => undefined);
    }
    await lab?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const stateRoot = (runtime: string): string => join(lab.dir, runtime === youki ? 'youki-state' : 'crio-state');

  /** containers/storage's layout: `<graph root>/overlay-containers/<id>/userdata`. */
  function bundleOf(id: string, annotations: Record<string, string>): string {
    return lab.bundle(join('storage', 'overlay-containers', id, 'userdata'), ['/bin/sleep', '30'], annotations);
  }

  /** conmon as CRI-O runs it (internal/oci/runtime_oci.go): it execs `runtime create` and stays as the monitor. */
  async function conmonCreate(runtime: string, id: string, name: string, bundle: string): Promise<void> {
    const persist = join(dir, 'persist', id);
    mkdirSync(persist, { recursive: true });
    for (const d of ['exits', 'sockets']) mkdirSync(join(dir, d), { recursive: true });
    await execRuntime(
      CONMON,
      [
        '-b', bundle,
        '-c', id,
        '--exit-dir', join(dir, 'exits'),
        '-l', join(persist, 'ctr.log'),
        '--log-level', 'error',
        '-n', name,
        '-P', join(persist, 'conmon.pid'),
        '-p', join(bundle, 'pidfile'),
        '--persist-dir', persist,
        '-r', runtime,
        '--runtime-arg', `--root=${stateRoot(runtime)}`,
        '--socket-dir-path', join(dir, 'sockets'),
        '-u', id,
      ],
      lab.log,
    );
    await rec.until((ev) => ev.some((e) => e.id === id && (e.type === 'create' || e.type === 'failed')));
  }

  /**
   * What the kubelet then asks of CRI-O: start, and (here) kill and remove. Like CRI-O, waits
   * for conmon's exit file before the delete: until conmon has reaped the init, runc still
   * calls the container running.
   */
  async function finish(runtime: string, id: string, viaConmon: boolean): Promise<void> {
    const global = ['--root', stateRoot(runtime)];
    await execRuntime(runtime, [...global, 'start', id], lab.log);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'start'));
    await execRuntime(runtime, [...global, 'kill', id, 'KILL'], lab.log);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'));
    if (viaConmon) await until(() => existsSync(join(dir, 'exits', id)), `conmon's exit file for ${id}`, 5000);
    await deleteWhenStopped(runtime, global, id, lab.log);
  }

  function expectResolved(want: Expected, runtimeName: 'runc' | 'youki', runtimePath: string): void {
    const events = rec.of(want.id);
    expect(events.map((e) => e.type), want.name).toEqual(['precreate', 'create', 'start', 'exit']);
    const [pre, create, start, exit] = events as [ContainerEvent, ContainerEvent, ContainerEvent, ContainerEvent];
    for (const e of events) {
      expect(e.manager).toBe('cri-o');
      expect(e.runtime.name).toBe(runtimeName);
      expect(e.runtime.path).toBe(runtimePath);
      expect(e.pod).toEqual({ name: want.pod.name, namespace: want.pod.namespace, uid: want.pod.uid });
      expect(e.container).toEqual({ name: want.name, type: want.type, image: want.image });
      expect(e.sandboxId).toBe(want.pod.sandboxId);
      expect(e.podLabels).toEqual(want.labels);
      expect(e.restartCount).toBe(want.restartCount);
      expect(e.bundle).toMatch(new RegExp(`/overlay-containers/${want.id}/userdata$`));
    }
    expect(pre.held, `held at its exec: ${pre.runtime.argv.join(' ')}`).toBe(true);
    expect(pre.specError).toBeNull();
    expect(create.pid).toBeGreaterThan(0);
    expect(start.pid).toBe(create.pid);
    expect(exit.exitCode).toBe(137);
  }

  it('3 CRI-O pods (sandbox, init, app, ephemeral debug container) through conmon: every field resolves', async () => {
    const logRoot = '/var/log/pods';
    for (let p = 0; p < 3; p++) {
      const pod: Pod = {
        name: `shop-${p}-${suffix}`,
        namespace: 'shop',
        uid: `8a0f${p}c2e-5b1d-4f0b-9e3a-${suffix.padStart(12, '0')}`,
        sandboxId: hexId(),
        labels: { app: 'shop', tier: `t${p}` },
      };
      const logDir = join(logRoot, `${pod.namespace}_${pod.name}_${pod.uid}`);
      const sandbox = sandboxAnnotations(pod, logDir);
      await conmonCreate(crioRunc, pod.sandboxId, sandbox[CRIO_KEYS.containerName]!, bundleOf(pod.sandboxId, sandbox));
      await finish(crioRunc, pod.sandboxId, true);
      expected.push({
        id: pod.sandboxId,
        type: 'sandbox',
        name: 'POD',
        image: PAUSE,
        pod,
        labels: JSON.parse(sandbox[CRIO_KEYS.labels]!) as Record<string, string>,
        restartCount: null,
      });
      const containers = [
        { name: 'migrate', type: 'init' as const, attempt: 0 },
        { name: 'cart', type: 'container' as const, attempt: p },
        { name: 'debugger', type: 'ephemeral' as const, attempt: 0 },
      ];
      for (const c of containers) {
        const id = hexId();
        const image = `docker.io/library/busybox:1.3${p}`;
        const annotations = containerAnnotations(pod, { ...c, id, image }, logDir, '');
        await conmonCreate(crioRunc, id, annotations[CRIO_KEYS.containerName]!, bundleOf(id, annotations));
        await finish(crioRunc, id, true);
        expected.push({
          id,
          type: c.type,
          name: c.name,
          image,
          pod,
          labels: JSON.parse(annotations[CRIO_KEYS.labels]!) as Record<string, string>,
          restartCount: c.attempt,
        });
      }
    }
    expect(expected).toHaveLength(12);
    for (const want of expected) expectResolved(want, 'runc', crioRunc);
  });

  it('10 youki containers (CRI-O runtime handler youki): 5 through conmon, 5 exec\'d directly with short flags', async () => {
    const pod: Pod = { name: `edge-${suffix}`, namespace: 'iot', uid: `c0ffee00-0000-4000-8000-${suffix.padStart(12, '0')}`, sandboxId: hexId(), labels: {} };
    const wants: Expected[] = [];
    for (let i = 0; i < 10; i++) {
      const id = hexId();
      const image = 'docker.io/library/busybox:1.36';
      const annotations = containerAnnotations(pod, { id, name: `sensor-${i}`, type: 'container', image, attempt: 0 }, '/var/log/pods/x', 'youki');
      const bundle = bundleOf(id, annotations);
      if (i < 5) {
        await conmonCreate(youki, id, annotations[CRIO_KEYS.containerName]!, bundle);
      } else {
        // youki's own spelling that runc also accepts: -b for --bundle
        await execRuntime(youki, ['--root', stateRoot(youki), 'create', '-b', bundle, '--pid-file', join(bundle, 'pidfile'), id], lab.log);
      }
      await finish(youki, id, i < 5);
      wants.push({
        id,
        type: 'container',
        name: `sensor-${i}`,
        image,
        pod,
        labels: JSON.parse(annotations[CRIO_KEYS.labels]!) as Record<string, string>,
        restartCount: 0,
      });
    }
    for (const want of wants) expectResolved(want, 'youki', youki);
  });

  it('leaves no container behind', async () => {
    for (const runtime of [crioRunc, youki]) {
      const list = await execRuntime(runtime, ['--root', stateRoot(runtime), 'list', '-q'], lab.log);
      expect(list.trim()).toBe('');
    }
  });
});
