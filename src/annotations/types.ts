// What every manager's resolver reads and returns: the manager files import these, index.ts
// re-exports them.

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

/** What config.v2.json tells about a container. */
export interface DockerContainer {
  /** Without docker's leading `/`. */
  name: string | null;
  /** The image as the user named it (`Config.Image`). */
  image: string | null;
  labels: Record<string, string>;
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
