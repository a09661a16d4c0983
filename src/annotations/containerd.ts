import { posix } from 'node:path';
import type { AnnotationMap, ContainerType, PodRef, ResolveHints, ResolvedMetadata } from './types.js';

/** containerd's CRI plugin (`io.kubernetes.cri.` + key); in brackets the first release with it. */
export const CONTAINERD_CRI_KEYS = {
  /** `sandbox` or `container` (1.1). */
  containerType: 'io.kubernetes.cri.container-type',
  /** On a sandbox, its own id (1.1). */
  sandboxId: 'io.kubernetes.cri.sandbox-id',
  /** (1.4) */
  containerName: 'io.kubernetes.cri.container-name',
  /** (1.5) */
  sandboxName: 'io.kubernetes.cri.sandbox-name',
  /** (1.5) */
  sandboxNamespace: 'io.kubernetes.cri.sandbox-namespace',
  /** Containers only (1.5). */
  imageName: 'io.kubernetes.cri.image-name',
  /** Sandboxes only; the kubelet makes it `/var/log/pods/<namespace>_<pod>_<uid>` (1.3). */
  sandboxLogDirectory: 'io.kubernetes.cri.sandbox-log-directory',
  /** (1.6.11, 1.7.0) */
  sandboxUid: 'io.kubernetes.cri.sandbox-uid',
  /** The pause image, on sandboxes (2.0). */
  sandboxImageName: 'io.kubernetes.cri.podsandbox.image-name',
} as const;

/** A shim's bundle: `<state>/io.containerd.runtime.v2.task/<namespace>/<id>` (v1.linux before 1.4). */
const TASK_BUNDLE = /(?:^|\/)io\.containerd\.runtime\.(?:v2\.task|v1\.linux)\/([^/]+)\/([^/]+)\/*$/;

const CRI_TYPES: ReadonlyMap<string, ContainerType> = new Map([
  ['sandbox', 'sandbox'],
  ['container', 'container'],
]);

export interface TaskBundle {
  namespace: string;
  id: string;
}

export function parseTaskBundle(bundle: string | null | undefined): TaskBundle | null {
  const match = bundle == null ? null : TASK_BUNDLE.exec(bundle);
  return match?.[1] !== undefined && match[2] !== undefined ? { namespace: match[1], id: match[2] } : null;
}

export function hasContainerdCriKeys(annotations: AnnotationMap): boolean {
  return Object.values(CONTAINERD_CRI_KEYS).some((key) => annotations.has(key));
}

/** `/var/log/pods/<namespace>_<pod>_<uid>`: none of the three parts can hold `_`. */
function parsePodLogDirectory(directory: string | undefined): PodRef | null {
  const parts = directory === undefined ? [] : posix.basename(directory).split('_');
  const [namespace, name, uid] = parts;
  return parts.length === 3 && namespace && name && uid ? { namespace, name, uid } : null;
}

export function resolveContainerd(annotations: AnnotationMap, hints: ResolveHints): ResolvedMetadata {
  const keys = CONTAINERD_CRI_KEYS;
  const task = parseTaskBundle(hints.bundle);
  const type = CRI_TYPES.get(annotations.get(keys.containerType) ?? '') ?? null;
  const isSandbox = type === 'sandbox';
  const id = hints.id ?? task?.id ?? (isSandbox ? annotations.get(keys.sandboxId) : undefined) ?? null;
  const imageKey = isSandbox ? keys.sandboxImageName : keys.imageName;
  return {
    manager: 'containerd',
    id,
    pod: criPod(annotations),
    container: { name: annotations.get(keys.containerName) ?? null, type, image: annotations.get(imageKey) ?? null },
    sandboxId: annotations.get(keys.sandboxId) ?? (isSandbox ? id : null),
    podLabels: null,
    containerdNamespace: task?.namespace ?? null,
    restartCount: null,
  };
}

/** Before 1.5 only a sandbox's log directory names its pod; before 1.6.11 only it has the uid. */
function criPod(annotations: AnnotationMap): PodRef | null {
  const keys = CONTAINERD_CRI_KEYS;
  const logDirectory = parsePodLogDirectory(annotations.get(keys.sandboxLogDirectory));
  const name = annotations.get(keys.sandboxName) ?? logDirectory?.name;
  const namespace = annotations.get(keys.sandboxNamespace) ?? logDirectory?.namespace;
  if (!name || !namespace) return null;
  return { name, namespace, uid: annotations.get(keys.sandboxUid) ?? logDirectory?.uid ?? null };
}
