// The kubelet's own keys and forms, wherever a manager keeps them: CRI-O copies them into the
// spec (and its Labels/Annotations JSON), cri-dockerd into docker's labels.
import type { ContainerType, PodRef } from './types.js';

/** The kubelet's labels and annotations. */
export const KUBELET_KEYS = {
  podName: 'io.kubernetes.pod.name',
  podNamespace: 'io.kubernetes.pod.namespace',
  podUid: 'io.kubernetes.pod.uid',
  containerName: 'io.kubernetes.container.name',
  /** `init`, `container` or `ephemeral`. */
  containerType: 'io.kubernetes.container.type',
  restartCount: 'io.kubernetes.container.restartCount',
  containerHash: 'io.kubernetes.container.hash',
} as const;

/** A kubelet key's non-empty value where a manager keeps it, else undefined. */
export type KubeletLookup = (key: string) => string | undefined;

const KUBELET_TYPES: ReadonlyMap<string, ContainerType> = new Map([
  ['init', 'init'],
  ['container', 'container'],
  ['ephemeral', 'ephemeral'],
]);

const RESTART_COUNT = /^\d{1,9}$/;

export interface KubeletName {
  container: string;
  pod: PodRef;
}

/** The kubelet's init/ephemeral distinction, finer than a manager's `container`. */
export function kubeletType(kubelet: KubeletLookup): ContainerType | null {
  return KUBELET_TYPES.get(kubelet(KUBELET_KEYS.containerType) ?? '') ?? null;
}

export function kubeletRestartCount(kubelet: KubeletLookup): number | null {
  const text = kubelet(KUBELET_KEYS.restartCount);
  return text !== undefined && RESTART_COUNT.test(text) ? Number(text) : null;
}

/** `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`: kubernetes names cannot hold `_`. */
export function parseKubeletName(text: string | undefined): KubeletName | null {
  const parts = text?.split('_') ?? [];
  const [prefix, container, name, namespace, uid] = parts;
  if (parts.length !== 6 || prefix !== 'k8s' || !container || !name || !namespace || !uid) return null;
  return { container, pod: { name, namespace, uid } };
}
