import { hasContainerdCriKeys, parseTaskBundle, resolveContainerd } from './containerd.js';
import { declaresCrio, hasCrioKeys, resolveCrio } from './crio.js';
import { isDockerBundle, resolveDocker, type DockerContainer } from './docker.js';
import { isPodman, resolvePodman } from './podman.js';

export { CONTAINERD_CRI_KEYS } from './containerd.js';
export { CRIO_KEYS, CRIO_MANAGER, KUBELET_KEYS } from './crio.js';
export {
  CRI_DOCKERD_LABELS,
  DOCKER_CONTAINERD_NAMESPACE,
  DOCKER_STATE,
  dockerConfigPath,
  parseDockerConfig,
  type DockerContainer,
} from './docker.js';
export { PODMAN_KEYS, PODMAN_MANAGER } from './podman.js';

export type Manager = 'containerd' | 'cri-o' | 'podman' | 'docker' | 'unknown';
export type ContainerType = 'sandbox' | 'container' | 'init' | 'ephemeral';

export interface PodRef {
  name: string;
  namespace: string;
  uid: string | null;
}

export interface ResolvedMetadata {
  manager: Manager;
  /** The container id, when the annotations, the hints or the bundle path tell it. */
  id: string | null;
  /** Null unless both the pod's name and namespace are known. */
  pod: PodRef | null;
  container: { name: string | null; type: ContainerType | null; image: string | null };
  /** For a sandbox, its own id. */
  sandboxId: string | null;
  /** CRI-O's Labels JSON. */
  podLabels: Record<string, string> | null;
  /** From a containerd shim's bundle path `.../io.containerd.runtime.v2.task/<namespace>/<id>`. */
  containerdNamespace: string | null;
  restartCount: number | null;
}

export interface ResolveHints {
  /** The runtime's bundle directory. */
  bundle?: string | null;
  /** The container id from the runtime's argv. */
  id?: string | null;
  /** conmon's `-n/--name`: podman's container name. */
  conmonName?: string | null;
  /** docker's record of the container (config.v2.json), when it could be read. */
  docker?: DockerContainer | null;
}

/** The non-empty string annotations: an empty value tells nothing (CRI-O's ImageName may be ""). */
export type AnnotationMap = ReadonlyMap<string, string>;

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
