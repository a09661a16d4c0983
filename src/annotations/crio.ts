import { KUBELET_KEYS, kubeletRestartCount, kubeletType, parseKubeletName, type KubeletLookup, type KubeletName } from './kubelet.js';
import type { AnnotationMap, ContainerType, PodRef, ResolveHints, ResolvedMetadata } from './types.js';

/** CRI-O's own keys (its `internal/annotations` package). */
export const CRIO_KEYS = {
  containerId: 'io.kubernetes.cri-o.ContainerID',
  /** The kubelet's `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>` form. */
  containerName: 'io.kubernetes.cri-o.ContainerName',
  /** `sandbox` or `container`. */
  containerType: 'io.kubernetes.cri-o.ContainerType',
  sandboxId: 'io.kubernetes.cri-o.SandboxID',
  /** `k8s_POD_<pod>_<namespace>_<uid>_<attempt>`. */
  sandboxName: 'io.kubernetes.cri-o.SandboxName',
  name: 'io.kubernetes.cri-o.Name',
  /** The image the user asked for. */
  image: 'io.kubernetes.cri-o.Image',
  /** Some name of the image; empty when it was referenced by id. */
  imageName: 'io.kubernetes.cri-o.ImageName',
  imageRef: 'io.kubernetes.cri-o.ImageRef',
  /** JSON object: the kubelet's labels (the pod's labels on a sandbox). */
  labels: 'io.kubernetes.cri-o.Labels',
  /** JSON object: the kubelet's annotations. */
  annotations: 'io.kubernetes.cri-o.Annotations',
  /** The pod's name, on sandboxes. */
  kubeName: 'io.kubernetes.cri-o.KubeName',
  namespace: 'io.kubernetes.cri-o.Namespace',
  logPath: 'io.kubernetes.cri-o.LogPath',
  created: 'io.kubernetes.cri-o.Created',
  hostName: 'io.kubernetes.cri-o.HostName',
  cgroupParent: 'io.kubernetes.cri-o.CgroupParent',
  runtimeHandler: 'io.kubernetes.cri-o.RuntimeHandler',
  privilegedRuntime: 'io.kubernetes.cri-o.PrivilegedRuntime',
  tty: 'io.kubernetes.cri-o.TTY',
  stdin: 'io.kubernetes.cri-o.Stdin',
  /** Shared with podman, which writes `libpod`. */
  containerManager: 'io.container.manager',
} as const;

export const CRIO_MANAGER = 'cri-o';

/** containers/storage (cri-o, podman): `<graph root>/<driver>-containers/<id>/userdata`. */
const STORAGE_BUNDLE = /(?:^|\/)\w+-containers\/([^/]+)\/userdata\/*$/;

export function containersStorageId(bundle: string | null | undefined): string | null {
  return (bundle == null ? null : STORAGE_BUNDLE.exec(bundle)?.[1]) ?? null;
}

const CRIO_TYPES: ReadonlyMap<string, ContainerType> = new Map([
  ['sandbox', 'sandbox'],
  ['container', 'container'],
]);

export function declaresCrio(annotations: AnnotationMap): boolean {
  return annotations.get(CRIO_KEYS.containerManager) === CRIO_MANAGER;
}

export function hasCrioKeys(annotations: AnnotationMap): boolean {
  return Object.values(CRIO_KEYS).some((key) => key !== CRIO_KEYS.containerManager && annotations.has(key));
}

export function resolveCrio(annotations: AnnotationMap, hints: ResolveHints): ResolvedMetadata {
  const kubelet = kubeletLookup(annotations);
  const type = crioType(annotations, kubelet);
  const id = annotations.get(CRIO_KEYS.containerId) ?? hints.id ?? containersStorageId(hints.bundle) ?? null;
  const names =
    parseKubeletName(annotations.get(CRIO_KEYS.sandboxName)) ?? parseKubeletName(annotations.get(CRIO_KEYS.containerName));
  const image = annotations.get(CRIO_KEYS.image) ?? annotations.get(CRIO_KEYS.imageName) ?? annotations.get(CRIO_KEYS.imageRef);
  return {
    manager: 'cri-o',
    id,
    pod: crioPod(annotations, kubelet, type, names),
    container: { name: kubelet(KUBELET_KEYS.containerName) ?? names?.container ?? null, type, image: image ?? null },
    sandboxId: annotations.get(CRIO_KEYS.sandboxId) ?? (type === 'sandbox' ? id : null),
    podLabels: stringRecord(annotations.get(CRIO_KEYS.labels)),
    containerdNamespace: null,
    restartCount: kubeletRestartCount(kubelet),
  };
}

/** A kubelet key from the spec itself, else from the Labels or Annotations JSON it came in. */
function kubeletLookup(annotations: AnnotationMap): KubeletLookup {
  const labels = stringRecord(annotations.get(CRIO_KEYS.labels));
  const kubeAnnotations = stringRecord(annotations.get(CRIO_KEYS.annotations));
  return (key) => annotations.get(key) ?? (labels?.[key] || undefined) ?? (kubeAnnotations?.[key] || undefined);
}

/** A sandbox is CRI-O's word; for the others the kubelet's type is finer (init, ephemeral). */
function crioType(annotations: AnnotationMap, kubelet: KubeletLookup): ContainerType | null {
  const type = CRIO_TYPES.get(annotations.get(CRIO_KEYS.containerType) ?? '') ?? null;
  return type === 'sandbox' ? type : (kubeletType(kubelet) ?? type);
}

function crioPod(annotations: AnnotationMap, kubelet: KubeletLookup, type: ContainerType | null, names: KubeletName | null): PodRef | null {
  const kubeName = type === 'sandbox' ? annotations.get(CRIO_KEYS.kubeName) : undefined;
  const name = kubelet(KUBELET_KEYS.podName) ?? kubeName ?? names?.pod.name;
  const namespace = kubelet(KUBELET_KEYS.podNamespace) ?? annotations.get(CRIO_KEYS.namespace) ?? names?.pod.namespace;
  if (name === undefined || namespace === undefined) return null;
  return { name, namespace, uid: kubelet(KUBELET_KEYS.podUid) ?? names?.pod.uid ?? null };
}

/** A JSON object's string members; null when the text is not a JSON object. */
function stringRecord(json: string | undefined): Record<string, string> | null {
  if (json === undefined) return null;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  return Object.fromEntries(Object.entries(value).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
}
