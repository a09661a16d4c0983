// Older containerd releases, made from the 1.6.20 fixtures by stripping the keys they lacked:
// the pod comes from the sandbox's log directory, and containers inherit it from their sandbox.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONTAINERD_CRI_KEYS as KEYS, resolveAnnotations, type ResolvedMetadata } from '../../src/annotations/index.js';
import { SandboxPods } from '../../src/watcher/sandboxes.js';

const K8S_TASKS = '/run/containerd/io.containerd.runtime.v2.task/k8s.io';
const SANDBOX_ID = 'ab75b50a338c784863c8538dbe38b9bc94741f21ecdee7650da7d438ad5ad918';
const CONTAINER_ID = 'c0ffee0000000000000000000000000000000000000000000000000000000001';
const POD = { name: 'demo1-pod', namespace: 'demons', uid: 'uid-demo1-1795764150527' };

function fixture(name: string): Record<string, string> {
  const spec = JSON.parse(readFileSync(new URL(`../fixtures/oci/${name}`, import.meta.url), 'utf8')) as {
    annotations: Record<string, string>;
  };
  return spec.annotations;
}

const SANDBOX_1_6 = fixture('containerd-1.6-cri-sandbox.json');
const CONTAINER_1_6 = fixture('containerd-1.6-cri-container.json');

/** The keys a release did not write yet (BRIEF section 2). */
const MISSING_BEFORE = {
  '1.6.11': [KEYS.sandboxUid],
  '1.5': [KEYS.sandboxUid, KEYS.sandboxName, KEYS.sandboxNamespace, KEYS.imageName],
} as const;

function without(annotations: Record<string, string>, keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(annotations).filter(([key]) => !keys.includes(key)));
}

function sandbox(annotations: Record<string, string>, id = SANDBOX_ID): ResolvedMetadata {
  return resolveAnnotations({ ...annotations, [KEYS.sandboxId]: id }, { bundle: `${K8S_TASKS}/${id}`, id });
}

function container(annotations: Record<string, string>, sandboxId = SANDBOX_ID): ResolvedMetadata {
  return resolveAnnotations({ ...annotations, [KEYS.sandboxId]: sandboxId }, { bundle: `${K8S_TASKS}/${CONTAINER_ID}`, id: CONTAINER_ID });
}

describe.each(Object.entries(MISSING_BEFORE))('containerd before %s', (_release, missing) => {
  const oldSandbox = without(SANDBOX_1_6, missing);
  const oldContainer = without(CONTAINER_1_6, missing);

  it('resolves the whole pod of a sandbox from its log directory', () => {
    expect(sandbox(oldSandbox)).toMatchObject({ pod: POD, sandboxId: SANDBOX_ID, container: { type: 'sandbox' } });
  });

  it('gives a container whose sandbox was seen the sandbox pod', () => {
    const pods = new SandboxPods();
    pods.resolve(sandbox(oldSandbox));
    expect(pods.resolve(container(oldContainer))).toEqual({ ...container(oldContainer), pod: POD });
  });

  it('leaves a container whose sandbox was not seen as its annotations say', () => {
    const pods = new SandboxPods();
    pods.resolve(sandbox(oldSandbox, 'another-sandbox'));
    const own = container(oldContainer);
    expect(own.pod?.uid ?? null).toBeNull();
    expect(pods.resolve(own)).toEqual(own);
  });
});

describe('SandboxPods', () => {
  it('keeps the fields a container has', () => {
    const pods = new SandboxPods();
    pods.resolve(sandbox({ ...SANDBOX_1_6, [KEYS.sandboxUid]: 'sandbox-uid' }));
    expect(pods.resolve(container(CONTAINER_1_6)).pod).toEqual(POD);
  });

  it('does not mix a container that names another pod with its sandbox pod', () => {
    const pods = new SandboxPods();
    pods.resolve(sandbox(without(SANDBOX_1_6, MISSING_BEFORE['1.6.11'])));
    const other = container({ ...without(CONTAINER_1_6, MISSING_BEFORE['1.6.11']), [KEYS.sandboxName]: 'other-pod' });
    expect(pods.resolve(other).pod).toEqual({ name: 'other-pod', namespace: POD.namespace, uid: null });
  });

  it('forgets a sandbox at its exit, not at one of its containers', () => {
    const pods = new SandboxPods();
    const oldSandbox = sandbox(without(SANDBOX_1_6, MISSING_BEFORE['1.5']));
    const oldContainer = container(without(CONTAINER_1_6, MISSING_BEFORE['1.5']));
    pods.resolve(oldSandbox);
    pods.forget(oldContainer);
    expect(pods.resolve(oldContainer).pod).toEqual(POD);
    pods.forget(oldSandbox);
    expect(pods.resolve(oldContainer).pod).toBeNull();
  });

  it('remembers at most max sandboxes, forgetting the oldest', () => {
    const pods = new SandboxPods(2);
    const oldSandbox = without(SANDBOX_1_6, MISSING_BEFORE['1.5']);
    const oldContainer = without(CONTAINER_1_6, MISSING_BEFORE['1.5']);
    for (const id of ['s1', 's2', 's3']) pods.resolve(sandbox(oldSandbox, id));
    expect(pods.resolve(container(oldContainer, 's1')).pod).toBeNull();
    expect(pods.resolve(container(oldContainer, 's2')).pod).toEqual(POD);
    expect(pods.resolve(container(oldContainer, 's3')).pod).toEqual(POD);
  });

  it('keys sandboxes by manager too', () => {
    const pods = new SandboxPods();
    pods.resolve(sandbox(SANDBOX_1_6));
    const crio = resolveAnnotations({ 'io.kubernetes.cri-o.SandboxID': SANDBOX_ID, 'io.kubernetes.cri-o.ContainerType': 'container' });
    expect(crio.manager).toBe('cri-o');
    expect(pods.resolve(crio).pod).toBeNull();
  });

  it('passes through what has no sandbox id', () => {
    const pods = new SandboxPods();
    const ctrRun = resolveAnnotations(null, { bundle: '/run/containerd/io.containerd.runtime.v2.task/default/c1', id: 'c1' });
    expect(pods.resolve(ctrRun)).toBe(ctrRun);
  });
});
