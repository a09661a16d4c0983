import { posix } from 'node:path';
import { parseTaskBundle, type TaskBundle } from './containerd.js';
import { KUBELET_KEYS } from './kubelet.js';
import type { ContainerType, DockerContainer, ResolveHints, ResolvedMetadata } from './types.js';

/**
 * docker writes no annotations (`null`); its containers are known by the containerd
 * namespace in their bundle path. The rest is in docker's own record of the container.
 */
export const DOCKER_CONTAINERD_NAMESPACE = 'moby';

/**
 * docker's record of a container: `<data-root>/containers/<id>/config.v2.json`. The data
 * root is wherever dockerd was told (`--data-root`): the spec tells it, as docker bind-mounts
 * files of that same directory into every container.
 */
export const DOCKER_STATE = {
  configFile: 'config.v2.json',
  /** The parent of every container's directory under the data root. */
  containersDir: 'containers',
  /** Destinations of the files docker mounts from the container's directory. */
  mountedFiles: ['/etc/hostname', '/etc/hosts', '/etc/resolv.conf'],
} as const;

/** Labels cri-dockerd (Kubernetes on docker) puts on its containers, besides the kubelet's. */
export const CRI_DOCKERD_LABELS = {
  /** `podsandbox` or `container`. */
  type: 'io.kubernetes.docker.type',
  sandboxId: 'io.kubernetes.sandbox.id',
} as const;

const CRI_DOCKERD_TYPES: ReadonlyMap<string, ContainerType> = new Map([
  ['podsandbox', 'sandbox'],
  ['container', 'container'],
]);

interface SpecMount {
  destination?: unknown;
  source?: unknown;
}

export function isDockerBundle(task: TaskBundle | null): boolean {
  return task?.namespace === DOCKER_CONTAINERD_NAMESPACE;
}

/** Where config.v2.json of container id is, judging by the spec's mounts; null when they do not tell. */
export function dockerConfigPath(mounts: unknown, id: string): string | null {
  if (!Array.isArray(mounts)) return null;
  for (const m of mounts as SpecMount[]) {
    if (typeof m?.source !== 'string' || !(DOCKER_STATE.mountedFiles as readonly unknown[]).includes(m.destination)) continue;
    const dir = posix.dirname(m.source);
    if (!posix.isAbsolute(dir) || posix.basename(dir) !== id) continue;
    if (posix.basename(posix.dirname(dir)) !== DOCKER_STATE.containersDir) continue;
    return posix.join(dir, DOCKER_STATE.configFile);
  }
  return null;
}

/** Parses config.v2.json; null when it is not docker's record of a container. */
export function parseDockerConfig(text: string): DockerContainer | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof doc !== 'object' || doc === null) return null;
  const { Name, Config } = doc as { Name?: unknown; Config?: { Image?: unknown; Labels?: unknown } | null };
  const labels: Record<string, string> = {};
  if (typeof Config?.Labels === 'object' && Config.Labels !== null) {
    for (const [k, v] of Object.entries(Config.Labels)) if (typeof v === 'string') labels[k] = v;
  }
  return {
    name: typeof Name === 'string' && Name !== '' ? Name.replace(/^\//, '') : null,
    image: typeof Config?.Image === 'string' && Config.Image !== '' ? Config.Image : null,
    labels,
  };
}

export function resolveDocker(hints: ResolveHints): ResolvedMetadata {
  const task = parseTaskBundle(hints.bundle);
  const docker = hints.docker ?? null;
  const label = (key: string): string | null => docker?.labels[key] || null;
  const podName = label(KUBELET_KEYS.podName);
  const podNamespace = label(KUBELET_KEYS.podNamespace);
  const type = CRI_DOCKERD_TYPES.get(label(CRI_DOCKERD_LABELS.type) ?? '') ?? null;
  const id = hints.id ?? task?.id ?? null;
  return {
    manager: 'docker',
    id,
    pod: podName && podNamespace ? { name: podName, namespace: podNamespace, uid: label(KUBELET_KEYS.podUid) } : null,
    container: { name: label(KUBELET_KEYS.containerName) ?? docker?.name ?? null, type, image: docker?.image ?? null },
    sandboxId: label(CRI_DOCKERD_LABELS.sandboxId) ?? (type === 'sandbox' ? id : null),
    podLabels: null,
    containerdNamespace: task?.namespace ?? null,
    restartCount: null,
  };
}
