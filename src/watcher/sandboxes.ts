// The pods of the sandboxes seen so far: what a container inherits when its own annotations
// lack the pod fields (containerd before 1.5 puts no pod name or namespace on containers,
// before 1.6.11 no pod uid anywhere but in the sandbox's log directory).
import type { PodRef, ResolvedMetadata } from '../annotations/index.js';

/** Far above the pods a node runs (the kubelet's default max is 110); a sandbox is forgotten at its exit. */
const MAX_SANDBOXES = 4096;

export class SandboxPods {
  /** by manager and sandbox id, oldest first */
  private readonly pods = new Map<string, PodRef>();

  constructor(private readonly max = MAX_SANDBOXES) {}

  /** A sandbox's pod is remembered; a container's missing pod fields come from its sandbox's. */
  resolve(meta: ResolvedMetadata): ResolvedMetadata {
    const key = keyOf(meta);
    if (key === null) return meta;
    if (meta.container.type === 'sandbox') {
      if (meta.pod !== null) this.remember(key, meta.pod);
      return meta;
    }
    const sandboxPod = this.pods.get(key);
    return sandboxPod === undefined ? meta : { ...meta, pod: inherit(meta.pod, sandboxPod) };
  }

  /** A sandbox that exited takes its pod along: a pod's new sandbox has a new id. */
  forget(meta: ResolvedMetadata): void {
    const key = keyOf(meta);
    if (key !== null && meta.container.type === 'sandbox') this.pods.delete(key);
  }

  private remember(key: string, pod: PodRef): void {
    this.pods.delete(key);
    if (this.pods.size >= this.max) {
      const oldest = this.pods.keys().next().value;
      if (oldest !== undefined) this.pods.delete(oldest);
    }
    this.pods.set(key, pod);
  }
}

function keyOf(meta: ResolvedMetadata): string | null {
  return meta.sandboxId === null ? null : `${meta.manager}/${meta.sandboxId}`;
}

/** A container's own pod fields win; a pod that names another pod than its sandbox's is kept as it is. */
function inherit(own: PodRef | null, sandbox: PodRef): PodRef {
  if (own === null) return sandbox;
  if (own.name !== sandbox.name || own.namespace !== sandbox.namespace) return own;
  return own.uid === null ? { ...own, uid: sandbox.uid } : own;
}
