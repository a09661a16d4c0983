import { containersStorageId, CRIO_KEYS } from './crio.js';
import type { AnnotationMap, ResolveHints, ResolvedMetadata } from './types.js';

/** podman's keys. Its spec names neither the container nor a pod: the name is only in conmon's `-n`. */
export const PODMAN_KEYS = {
  /** Holds PODMAN_MANAGER. */
  containerManager: CRIO_KEYS.containerManager,
  /** Prefix of podman's own settings (`autoremove`, `init`, `privileged`, ...). */
  podmanAnnotationPrefix: 'io.podman.annotations.',
} as const;

export const PODMAN_MANAGER = 'libpod';

export function isPodman(annotations: AnnotationMap): boolean {
  return annotations.get(PODMAN_KEYS.containerManager) === PODMAN_MANAGER;
}

export function resolvePodman(hints: ResolveHints): ResolvedMetadata {
  return {
    manager: 'podman',
    id: hints.id ?? containersStorageId(hints.bundle),
    pod: null,
    container: { name: hints.conmonName ?? null, type: null, image: null },
    sandboxId: null,
    podLabels: null,
    containerdNamespace: null,
    restartCount: null,
  };
}
