import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CONTAINERD_CRI_KEYS,
  CRIO_KEYS,
  detectManager,
  KUBELET_KEYS,
  resolveAnnotations,
  type ResolvedMetadata,
} from '../../src/annotations/index.js';
import { parseRuntimeArgv, runtimeNameOf } from '../../src/argv.js';
import { parseSpec, specAnnotations } from '../../src/spec.js';

function fixtureAnnotations(name: string): Record<string, string> | null {
  const spec = parseSpec(readFileSync(new URL(`../fixtures/oci/${name}`, import.meta.url)), name);
  return spec.annotations === null || spec.annotations === undefined ? null : specAnnotations(spec).annotations;
}

const capturedArgv: { runtime: string; parent: string[]; argv: string[] }[] = readFileSync(
  new URL('../fixtures/argv/captured.ndjson', import.meta.url),
  'utf8',
)
  .split('\n')
  .filter((line) => line !== '')
  .map((line) => JSON.parse(line));

/** The captured create whose bundle contains `marker`, with its parent. */
function capturedCreate(marker: string) {
  const line = capturedArgv.find((l) => l.argv.includes('create') && l.argv.some((a) => a.includes(marker)));
  if (line === undefined) throw new Error(`no captured create for ${marker}`);
  const runtime = runtimeNameOf(line.argv[0] ?? '');
  if (runtime === null) throw new Error('not a runtime');
  return { invocation: parseRuntimeArgv(line.argv, runtime), parent: line.parent };
}

const SANDBOX_ID = 'ab75b50a338c784863c8538dbe38b9bc94741f21ecdee7650da7d438ad5ad918';
const CONTAINER_ID = 'c0ffee0000000000000000000000000000000000000000000000000000000001';
const K8S_TASKS = '/run/containerd/io.containerd.runtime.v2.task/k8s.io';
const NOTHING: Omit<ResolvedMetadata, 'manager'> = {
  id: null,
  pod: null,
  container: { name: null, type: null, image: null },
  sandboxId: null,
  podLabels: null,
  containerdNamespace: null,
  restartCount: null,
};

describe('fixtures/oci', () => {
  it('containerd 1.6 CRI container', () => {
    const annotations = fixtureAnnotations('containerd-1.6-cri-container.json');
    expect(resolveAnnotations(annotations, { bundle: `${K8S_TASKS}/${CONTAINER_ID}` })).toEqual({
      manager: 'containerd',
      id: CONTAINER_ID,
      pod: { name: 'demo1-pod', namespace: 'demons', uid: 'uid-demo1-1795764150527' },
      container: { name: 'demo1', type: 'container', image: 'demo.local/busybox:1' },
      sandboxId: SANDBOX_ID,
      podLabels: null,
      containerdNamespace: 'k8s.io',
      restartCount: null,
    });
  });

  it('containerd 1.6 CRI sandbox', () => {
    const annotations = fixtureAnnotations('containerd-1.6-cri-sandbox.json');
    expect(resolveAnnotations(annotations, { bundle: `${K8S_TASKS}/${SANDBOX_ID}` })).toEqual({
      manager: 'containerd',
      id: SANDBOX_ID,
      pod: { name: 'demo1-pod', namespace: 'demons', uid: 'uid-demo1-1795764150527' },
      container: { name: null, type: 'sandbox', image: null },
      sandboxId: SANDBOX_ID,
      podLabels: null,
      containerdNamespace: 'k8s.io',
      restartCount: null,
    });
  });

  it('containerd CRI sandbox without hints takes its id from sandbox-id', () => {
    const resolved = resolveAnnotations(fixtureAnnotations('containerd-1.6-cri-sandbox.json'));
    expect(resolved).toMatchObject({ id: SANDBOX_ID, sandboxId: SANDBOX_ID, containerdNamespace: null });
  });

  it('ctr run: no annotations, identity from the bundle path', () => {
    const annotations = fixtureAnnotations('containerd-1.6-ctr-run.json');
    expect(annotations).toBeNull();
    const bundle = '/run/containerd/io.containerd.runtime.v2.task/default/demo-ctr';
    expect(resolveAnnotations(annotations, { bundle })).toEqual({
      ...NOTHING,
      manager: 'containerd',
      id: 'demo-ctr',
      containerdNamespace: 'default',
    });
  });

  it('docker: no annotations, the captured create names the moby namespace and id', () => {
    const annotations = fixtureAnnotations('docker-20.10.json');
    expect(annotations).toBeNull();
    const { invocation } = capturedCreate('/moby/');
    expect(resolveAnnotations(annotations, { bundle: invocation.bundle, id: invocation.id })).toEqual({
      ...NOTHING,
      manager: 'docker',
      id: '19fd12f5cd641c65f4dcc0bd030b5c682bfe25111c0933b6e5b782c02a801351',
      containerdNamespace: 'moby',
    });
  });

  it('podman: libpod annotations, the name from the captured conmon parent', () => {
    const annotations = fixtureAnnotations('podman-4.3.json');
    const { invocation, parent } = capturedCreate('overlay-containers');
    const conmon = parseRuntimeArgv(parent, 'conmon');
    const hints = { bundle: invocation.bundle, id: invocation.id, conmonName: conmon.name };
    expect(resolveAnnotations(annotations, hints)).toEqual({
      ...NOTHING,
      manager: 'podman',
      id: '03136be1ccd5279398401a97ba298b9562541f50c033fa33d91480ae4011955e',
      container: { name: 'rp1', type: null, image: null },
    });
  });

  it('podman without hints takes the id from a containers/storage bundle', () => {
    const annotations = fixtureAnnotations('podman-4.3.json');
    expect(resolveAnnotations(annotations)).toEqual({ ...NOTHING, manager: 'podman' });
    const bundle = '/var/lib/containers/storage/overlay-containers/abc123/userdata/';
    expect(resolveAnnotations(annotations, { bundle }).id).toBe('abc123');
  });
});

describe('older containerd', () => {
  const base = {
    [CONTAINERD_CRI_KEYS.containerType]: 'container',
    [CONTAINERD_CRI_KEYS.sandboxId]: SANDBOX_ID,
  };
  const logDirectory = '/var/log/pods/demons_demo1-pod_uid-1';

  it('1.1 - 1.3 container: only its type and sandbox', () => {
    expect(resolveAnnotations(base, { id: CONTAINER_ID })).toEqual({
      ...NOTHING,
      manager: 'containerd',
      id: CONTAINER_ID,
      container: { name: null, type: 'container', image: null },
      sandboxId: SANDBOX_ID,
    });
  });

  it('1.4 container: its name too', () => {
    const resolved = resolveAnnotations({ ...base, [CONTAINERD_CRI_KEYS.containerName]: 'app' });
    expect(resolved.container.name).toBe('app');
    expect(resolved.pod).toBeNull();
  });

  it('1.3 sandbox: the pod from its log directory', () => {
    const resolved = resolveAnnotations({
      [CONTAINERD_CRI_KEYS.containerType]: 'sandbox',
      [CONTAINERD_CRI_KEYS.sandboxId]: SANDBOX_ID,
      [CONTAINERD_CRI_KEYS.sandboxLogDirectory]: logDirectory,
    });
    expect(resolved).toMatchObject({
      id: SANDBOX_ID,
      sandboxId: SANDBOX_ID,
      pod: { name: 'demo1-pod', namespace: 'demons', uid: 'uid-1' },
      container: { type: 'sandbox' },
    });
  });

  it('1.5 sandbox: named pod, uid from the log directory', () => {
    const resolved = resolveAnnotations({
      [CONTAINERD_CRI_KEYS.containerType]: 'sandbox',
      [CONTAINERD_CRI_KEYS.sandboxName]: 'named',
      [CONTAINERD_CRI_KEYS.sandboxNamespace]: 'ns',
      [CONTAINERD_CRI_KEYS.sandboxLogDirectory]: `${logDirectory}/`,
    });
    expect(resolved.pod).toEqual({ name: 'named', namespace: 'ns', uid: 'uid-1' });
  });

  it('1.5 container: named pod, no uid', () => {
    const resolved = resolveAnnotations({
      ...base,
      [CONTAINERD_CRI_KEYS.sandboxName]: 'p',
      [CONTAINERD_CRI_KEYS.sandboxNamespace]: 'ns',
      [CONTAINERD_CRI_KEYS.imageName]: 'img:1',
    });
    expect(resolved).toMatchObject({ pod: { name: 'p', namespace: 'ns', uid: null }, container: { image: 'img:1' } });
  });

  it.each(['/var/log/pods', '/var/log/pods/a_b', '/var/log/pods/a_b_c_d', '/var/log/pods/_b_c'])(
    'ignores the malformed log directory %s',
    (directory) => {
      const resolved = resolveAnnotations({
        [CONTAINERD_CRI_KEYS.containerType]: 'sandbox',
        [CONTAINERD_CRI_KEYS.sandboxLogDirectory]: directory,
      });
      expect(resolved.pod).toBeNull();
    },
  );

  it('2.0 sandbox: the pause image', () => {
    const resolved = resolveAnnotations({
      [CONTAINERD_CRI_KEYS.containerType]: 'sandbox',
      [CONTAINERD_CRI_KEYS.sandboxImageName]: 'registry.k8s.io/pause:3.10',
    });
    expect(resolved.container.image).toBe('registry.k8s.io/pause:3.10');
  });

  it('an unknown container type is no type', () => {
    expect(resolveAnnotations({ [CONTAINERD_CRI_KEYS.containerType]: 'vm' }).container.type).toBeNull();
  });
});

describe('cri-o', () => {
  const POD_UID = '5f2c8e1a-1111-2222-3333-444455556666';
  const CRIO_ID = 'e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1';
  const CRIO_SANDBOX = 'f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2';
  const kubeletLabels = {
    [KUBELET_KEYS.podName]: 'web-0',
    [KUBELET_KEYS.podNamespace]: 'shop',
    [KUBELET_KEYS.podUid]: POD_UID,
    [KUBELET_KEYS.containerName]: 'nginx',
  };
  const kubeletAnnotations = {
    [KUBELET_KEYS.containerHash]: '8d4e1ab2',
    [KUBELET_KEYS.restartCount]: '2',
  };
  const container: Record<string, string> = {
    [CRIO_KEYS.containerId]: CRIO_ID,
    [CRIO_KEYS.containerName]: `k8s_nginx_web-0_shop_${POD_UID}_2`,
    [CRIO_KEYS.containerType]: 'container',
    [CRIO_KEYS.sandboxId]: CRIO_SANDBOX,
    [CRIO_KEYS.sandboxName]: `k8s_POD_web-0_shop_${POD_UID}_0`,
    [CRIO_KEYS.name]: `k8s_nginx_web-0_shop_${POD_UID}_2`,
    [CRIO_KEYS.image]: 'nginx:1.27',
    [CRIO_KEYS.imageName]: 'docker.io/library/nginx:1.27',
    [CRIO_KEYS.imageRef]: 'sha256:0123',
    [CRIO_KEYS.labels]: JSON.stringify(kubeletLabels),
    [CRIO_KEYS.annotations]: JSON.stringify(kubeletAnnotations),
    [CRIO_KEYS.kubeName]: 'nginx',
    [CRIO_KEYS.namespace]: 'shop',
    [CRIO_KEYS.logPath]: `/var/log/pods/shop_web-0_${POD_UID}/nginx/2.log`,
    [CRIO_KEYS.created]: '2026-11-27T07:29:39.712007463Z',
    [CRIO_KEYS.hostName]: 'web-0',
    [CRIO_KEYS.cgroupParent]: 'kubepods-besteffort.slice',
    [CRIO_KEYS.runtimeHandler]: 'runc',
    [CRIO_KEYS.privilegedRuntime]: 'false',
    [CRIO_KEYS.tty]: 'false',
    [CRIO_KEYS.stdin]: 'false',
    [CRIO_KEYS.containerManager]: 'cri-o',
    ...kubeletLabels,
    ...kubeletAnnotations,
    [KUBELET_KEYS.containerType]: 'container',
  };
  const { [KUBELET_KEYS.containerName]: _containerName, ...podKeys } = kubeletLabels;
  const podLabels = { app: 'web', ...podKeys };
  const sandbox: Record<string, string> = {
    [CRIO_KEYS.containerId]: CRIO_SANDBOX,
    [CRIO_KEYS.containerName]: `k8s_POD_web-0_shop_${POD_UID}_0`,
    [CRIO_KEYS.containerType]: 'sandbox',
    [CRIO_KEYS.sandboxId]: CRIO_SANDBOX,
    [CRIO_KEYS.sandboxName]: `k8s_POD_web-0_shop_${POD_UID}_0`,
    [CRIO_KEYS.image]: 'registry.k8s.io/pause:3.10',
    [CRIO_KEYS.imageName]: 'registry.k8s.io/pause:3.10',
    [CRIO_KEYS.labels]: JSON.stringify(podLabels),
    [CRIO_KEYS.annotations]: '{}',
    [CRIO_KEYS.kubeName]: 'web-0',
    [CRIO_KEYS.namespace]: 'shop',
    [CRIO_KEYS.containerManager]: 'cri-o',
    ...podLabels,
  };

  it('the synthetic sets cover every CRI-O and kubelet key', () => {
    expect(Object.keys(container)).toEqual(expect.arrayContaining([...Object.values(CRIO_KEYS), ...Object.values(KUBELET_KEYS)]));
  });

  it('container', () => {
    expect(resolveAnnotations(container, { id: 'ignored-in-favour-of-ContainerID' })).toEqual({
      manager: 'cri-o',
      id: CRIO_ID,
      pod: { name: 'web-0', namespace: 'shop', uid: POD_UID },
      container: { name: 'nginx', type: 'container', image: 'nginx:1.27' },
      sandboxId: CRIO_SANDBOX,
      podLabels: kubeletLabels,
      containerdNamespace: null,
      restartCount: 2,
    });
  });

  it('sandbox', () => {
    expect(resolveAnnotations(sandbox)).toEqual({
      manager: 'cri-o',
      id: CRIO_SANDBOX,
      pod: { name: 'web-0', namespace: 'shop', uid: POD_UID },
      container: { name: 'POD', type: 'sandbox', image: 'registry.k8s.io/pause:3.10' },
      sandboxId: CRIO_SANDBOX,
      podLabels,
      containerdNamespace: null,
      restartCount: null,
    });
  });

  it.each(['init', 'ephemeral'] as const)('honours the kubelet type %s over ContainerType container', (type) => {
    expect(resolveAnnotations({ ...container, [KUBELET_KEYS.containerType]: type }).container.type).toBe(type);
  });

  it('keeps a sandbox a sandbox whatever the kubelet type', () => {
    expect(resolveAnnotations({ ...sandbox, [KUBELET_KEYS.containerType]: 'init' }).container.type).toBe('sandbox');
  });

  it('ignores an unknown kubelet type', () => {
    expect(resolveAnnotations({ ...container, [KUBELET_KEYS.containerType]: 'sidecar' }).container.type).toBe('container');
  });

  it('falls back to the Labels and Annotations JSON for kubelet keys', () => {
    const onlyJson = Object.fromEntries(
      Object.entries(container).filter(([key]) => !(Object.values(KUBELET_KEYS) as string[]).includes(key)),
    );
    expect(resolveAnnotations(onlyJson)).toMatchObject({
      pod: { name: 'web-0', namespace: 'shop', uid: POD_UID },
      container: { name: 'nginx', type: 'container' },
      restartCount: 2,
    });
  });

  it('falls back to the k8s_ names without kubelet keys', () => {
    const bare = {
      [CRIO_KEYS.containerManager]: 'cri-o',
      [CRIO_KEYS.containerType]: 'container',
      [CRIO_KEYS.containerName]: `k8s_nginx_web-0_shop_${POD_UID}_2`,
    };
    expect(resolveAnnotations(bare, { id: CRIO_ID })).toMatchObject({
      id: CRIO_ID,
      pod: { name: 'web-0', namespace: 'shop', uid: POD_UID },
      container: { name: 'nginx', type: 'container', image: null },
      restartCount: null,
    });
  });

  it('takes a sandbox pod from KubeName and Namespace', () => {
    const bare = {
      [CRIO_KEYS.containerManager]: 'cri-o',
      [CRIO_KEYS.containerType]: 'sandbox',
      [CRIO_KEYS.kubeName]: 'web-0',
      [CRIO_KEYS.namespace]: 'shop',
    };
    const bundle = `/run/containers/storage/overlay-containers/${CRIO_SANDBOX}/userdata`;
    expect(resolveAnnotations(bare, { bundle })).toMatchObject({
      id: CRIO_SANDBOX,
      sandboxId: CRIO_SANDBOX,
      pod: { name: 'web-0', namespace: 'shop', uid: null },
    });
  });

  it('prefers Image, then a non-empty ImageName, then ImageRef', () => {
    const { [CRIO_KEYS.image]: _image, ...withoutImage } = container;
    expect(resolveAnnotations(withoutImage).container.image).toBe('docker.io/library/nginx:1.27');
    const emptyName = { ...withoutImage, [CRIO_KEYS.imageName]: '' };
    expect(resolveAnnotations(emptyName).container.image).toBe('sha256:0123');
  });

  it.each([
    ['broken JSON', '{not json'],
    ['an array', '[1,2]'],
    ['a string', '"text"'],
    ['null', 'null'],
    ['100,000 nesting levels', `${'['.repeat(100_000)}${']'.repeat(100_000)}`],
  ])('ignores Labels that are %s', (_what, labels) => {
      const resolved = resolveAnnotations({ ...container, [CRIO_KEYS.labels]: labels });
      expect(resolved.podLabels).toBeNull();
      expect(resolved.pod?.name).toBe('web-0');
  });

  it('keeps only the string labels', () => {
    const labels = JSON.stringify({ app: 'web', replicas: 3, nested: { a: 'b' } });
    expect(resolveAnnotations({ ...sandbox, [CRIO_KEYS.labels]: labels }).podLabels).toEqual({ app: 'web' });
  });

  it.each(['abc', '-1', '1.5', '', '99999999999', ' 3'])('ignores the restart count %j', (count) => {
    expect(resolveAnnotations({ ...container, [KUBELET_KEYS.restartCount]: count }).restartCount).toBe(
      count === '' ? 2 : null,
    );
  });

  it('is recognised by its keys without io.container.manager', () => {
    const { [CRIO_KEYS.containerManager]: _manager, ...undeclared } = container;
    expect(detectManager(undeclared)).toBe('cri-o');
  });
});

describe('detectManager', () => {
  it.each([
    [{ [CRIO_KEYS.containerManager]: 'libpod', [CRIO_KEYS.created]: 'x' }, {}, 'podman'],
    [{ [CRIO_KEYS.containerManager]: 'cri-o' }, {}, 'cri-o'],
    [{ [CRIO_KEYS.containerManager]: 'cri-o', [CONTAINERD_CRI_KEYS.containerType]: 'container' }, {}, 'cri-o'],
    [{ [CONTAINERD_CRI_KEYS.sandboxId]: 'x' }, {}, 'containerd'],
    [{ [CRIO_KEYS.sandboxId]: 'x' }, {}, 'cri-o'],
    [null, { bundle: '/var/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/abc' }, 'docker'],
    [null, { bundle: '/run/docker/containerd/daemon/io.containerd.runtime.v1.linux/moby/abc' }, 'docker'],
    [{}, { bundle: '/run/containerd/io.containerd.runtime.v2.task/default/abc/' }, 'containerd'],
    [{ 'org.opencontainers.image.stopSignal': '15' }, { bundle: '/tmp/bundle' }, 'unknown'],
    [undefined, {}, 'unknown'],
    [{ [CRIO_KEYS.containerManager]: 'someone-else' }, {}, 'unknown'],
  ] as const)('%j with %j is %s', (annotations, hints, manager) => {
    expect(detectManager(annotations, hints)).toBe(manager);
    expect(resolveAnnotations(annotations, hints).manager).toBe(manager);
  });

  it('knows nothing of an unknown container but the hinted id', () => {
    expect(resolveAnnotations(null, { id: 'plain', bundle: '/srv/b' })).toEqual({ ...NOTHING, manager: 'unknown', id: 'plain' });
  });

  it('ignores values that are not strings and empty values', () => {
    const annotations = { [CONTAINERD_CRI_KEYS.containerType]: 7, [CONTAINERD_CRI_KEYS.sandboxId]: '' } as unknown as Record<
      string,
      string
    >;
    expect(detectManager(annotations)).toBe('unknown');
    expect(resolveAnnotations('junk' as unknown as Record<string, string>).manager).toBe('unknown');
  });
});
