// docker's own record of a container: where the spec says it is, and what it tells.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CRI_DOCKERD_LABELS,
  dockerConfigPath,
  KUBELET_KEYS,
  parseDockerConfig,
  resolveAnnotations,
} from '../../src/annotations/index.js';
import { parseSpec } from '../../src/spec.js';

const SPEC = parseSpec(readFileSync(new URL('../fixtures/oci/docker-20.10.json', import.meta.url)), 'docker-20.10.json');
const SPEC_ID = '19fd12f5cd641c65f4dcc0bd030b5c682bfe25111c0933b6e5b782c02a801351';
const CONFIG_TEXT = readFileSync(new URL('../fixtures/docker/config.v2.json', import.meta.url), 'utf8');
const BUNDLE = '/var/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/';

describe('dockerConfigPath', () => {
  it("finds config.v2.json beside the files docker mounts into the container (docker's data root)", () => {
    expect(dockerConfigPath(SPEC.mounts, SPEC_ID)).toBe(`/var/lib/docker/containers/${SPEC_ID}/config.v2.json`);
  });

  it('follows a data root moved with --data-root', () => {
    const mounts = [{ destination: '/etc/hosts', source: `/srv/d/containers/${SPEC_ID}/hosts`, type: 'bind' }];
    expect(dockerConfigPath(mounts, SPEC_ID)).toBe(`/srv/d/containers/${SPEC_ID}/config.v2.json`);
  });

  it.each([
    ['another id', SPEC.mounts, 'other'],
    ['no mounts', undefined, SPEC_ID],
    ['mounts not a list', { '/etc/hosts': 'x' }, SPEC_ID],
    ['a relative source', [{ destination: '/etc/hosts', source: `containers/${SPEC_ID}/hosts` }], SPEC_ID],
    ['not under containers/', [{ destination: '/etc/hosts', source: `/srv/d/other/${SPEC_ID}/hosts` }], SPEC_ID],
    ['another destination', [{ destination: '/data', source: `/srv/d/containers/${SPEC_ID}/hosts` }], SPEC_ID],
  ])('is null for %s', (_, mounts, id) => {
    expect(dockerConfigPath(mounts, id)).toBeNull();
  });
});

describe('parseDockerConfig', () => {
  it("reads the name (without docker's /), image and labels of a real config.v2.json", () => {
    expect(parseDockerConfig(CONFIG_TEXT)).toEqual({ name: 'web-1', image: 'ocinotify/busybox:test', labels: { app: 'shop' } });
  });

  it.each(['', 'not json', '[]', 'null', '{"Name": 7, "Config": {"Image": ["x"], "Labels": {"a": 1}}}'])(
    'tolerates %j',
    (text) => {
      const parsed = parseDockerConfig(text);
      if (parsed !== null) expect(parsed).toEqual({ name: null, image: null, labels: {} });
    },
  );
});

describe('resolveAnnotations for docker', () => {
  const id = '668d86d98d684c27f020a5fa64de550c22e2bb6f057f1210ca23580653705ab7';

  it('names a plain docker container from its record', () => {
    const docker = parseDockerConfig(CONFIG_TEXT);
    expect(resolveAnnotations(null, { bundle: BUNDLE + id, id, docker })).toEqual({
      manager: 'docker',
      id,
      pod: null,
      container: { name: 'web-1', type: null, image: 'ocinotify/busybox:test' },
      sandboxId: null,
      podLabels: null,
      containerdNamespace: 'moby',
      restartCount: null,
    });
  });

  it("resolves the pod of a cri-dockerd container from the kubelet's labels", () => {
    const labels = {
      [KUBELET_KEYS.podName]: 'cart-7d9f8c',
      [KUBELET_KEYS.podNamespace]: 'shop',
      [KUBELET_KEYS.podUid]: '5e1d0a7',
      [KUBELET_KEYS.containerName]: 'cart',
      [CRI_DOCKERD_LABELS.type]: 'container',
      [CRI_DOCKERD_LABELS.sandboxId]: 'sbx',
    };
    const docker = { name: 'k8s_cart_cart-7d9f8c_shop_5e1d0a7_0', image: 'shop/cart:1', labels };
    expect(resolveAnnotations(null, { bundle: BUNDLE + id, id, docker })).toMatchObject({
      manager: 'docker',
      pod: { name: 'cart-7d9f8c', namespace: 'shop', uid: '5e1d0a7' },
      container: { name: 'cart', type: 'container', image: 'shop/cart:1' },
      sandboxId: 'sbx',
    });
    const sandbox = { ...docker, labels: { ...labels, [CRI_DOCKERD_LABELS.type]: 'podsandbox', [KUBELET_KEYS.containerName]: '' } };
    const resolved = resolveAnnotations(null, { bundle: BUNDLE + id, id, docker: sandbox });
    expect(resolved.container.type).toBe('sandbox');
    expect(resolved.container.name).toBe('k8s_cart_cart-7d9f8c_shop_5e1d0a7_0');
  });

  it('without a readable record: the id and namespace only, as before', () => {
    expect(resolveAnnotations(null, { bundle: BUNDLE + id, id, docker: null }).container).toEqual({ name: null, type: null, image: null });
  });
});
