import { hasContainerdCriKeys, parseTaskBundle, resolveContainerd } from './containerd.js';
import { declaresCrio, hasCrioKeys, resolveCrio } from './crio.js';
import { isDockerBundle, resolveDocker } from './docker.js';
import { isPodman, resolvePodman } from './podman.js';
import type { AnnotationMap, Manager, ResolvedMetadata, ResolveHints } from './types.js';

export { CONTAINERD_CRI_KEYS } from './containerd.js';
export { CRIO_KEYS, CRIO_MANAGER } from './crio.js';
export { CRI_DOCKERD_LABELS, DOCKER_CONTAINERD_NAMESPACE, DOCKER_STATE, dockerConfigPath, parseDockerConfig } from './docker.js';
export { KUBELET_KEYS } from './kubelet.js';
export { PODMAN_KEYS, PODMAN_MANAGER } from './podman.js';
export type { AnnotationMap, ContainerType, DockerContainer, Manager, PodRef, ResolvedMetadata, ResolveHints } from './types.js';

export function detectManager(
  annotations: Record<string, string> | null | undefined,
  hints: ResolveHints = {},
): Manager {
  return managerOf(annotationMap(annotations), hints);
}

export function resolveAnnotations(
  annotations: Record<string, string> | null | undefined,
  hints: ResolveHints = {},
): ResolvedMetadata {
  const map = annotationMap(annotations);
  switch (managerOf(map, hints)) {
    case 'containerd':
      return resolveContainerd(map, hints);
    case 'cri-o':
      return resolveCrio(map, hints);
    case 'podman':
      return resolvePodman(hints);
    case 'docker':
      return resolveDocker(hints);
    case 'unknown':
      return unknownMetadata(hints);
  }
}

/** A declared manager wins over the keys present; the bundle path decides when there are none. */
function managerOf(annotations: AnnotationMap, hints: ResolveHints): Manager {
  if (isPodman(annotations)) return 'podman';
  if (declaresCrio(annotations)) return 'cri-o';
  if (hasContainerdCriKeys(annotations)) return 'containerd';
  if (hasCrioKeys(annotations)) return 'cri-o';
  const task = parseTaskBundle(hints.bundle);
  if (task === null) return 'unknown';
  return isDockerBundle(task) ? 'docker' : 'containerd';
}

function annotationMap(annotations: Record<string, string> | null | undefined): AnnotationMap {
  const map = new Map<string, string>();
  if (typeof annotations !== 'object' || annotations === null) return map;
  for (const [key, value] of Object.entries(annotations)) {
    if (typeof value === 'string' && value !== '') map.set(key, value);
  }
  return map;
}

function unknownMetadata(hints: ResolveHints): ResolvedMetadata {
  return {
    manager: 'unknown',
    id: hints.id ?? null,
    pod: null,
    container: { name: null, type: null, image: null },
    sandboxId: null,
    podLabels: null,
    containerdNamespace: null,
    restartCount: null,
  };
}
