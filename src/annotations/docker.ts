import { parseTaskBundle, type TaskBundle } from './containerd.js';
import type { ResolveHints, ResolvedMetadata } from './index.js';

/**
 * docker writes no annotations (`null`); its containers are known by the containerd
 * namespace in their bundle path. The name lives in /var/lib/docker/containers/<id>/config.v2.json.
 */
export const DOCKER_CONTAINERD_NAMESPACE = 'moby';

export function isDockerBundle(task: TaskBundle | null): boolean {
  return task?.namespace === DOCKER_CONTAINERD_NAMESPACE;
}

export function resolveDocker(hints: ResolveHints): ResolvedMetadata {
  const task = parseTaskBundle(hints.bundle);
  return {
    manager: 'docker',
    id: hints.id ?? task?.id ?? null,
    pod: null,
    container: { name: null, type: null, image: null },
    sandboxId: null,
    podLabels: null,
    containerdNamespace: task?.namespace ?? null,
    restartCount: null,
  };
}
