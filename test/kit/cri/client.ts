// A test-only CRI client (runtime.v1.RuntimeService over a unix socket), the kubelet's part
// reduced to what hostNetwork pods need. Messages are the camelCase objects of api.proto.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import { sleep } from '../wait.js';

const PROTO = fileURLToPath(new URL('./api.proto', import.meta.url));
const CALL_TIMEOUT_MS = 30_000;

type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';

interface NamespaceOption {
  network: NamespaceMode;
  pid: NamespaceMode;
  ipc: NamespaceMode;
}

export interface PodSandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt: number };
  hostname: string;
  logDirectory: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  linux: { cgroupParent: string; securityContext: { namespaceOptions: NamespaceOption } };
}

type ProfileType = 'RuntimeDefault' | 'Unconfined' | 'Localhost';

/** What a pod spec's securityContext becomes (the kubelet's translation, the fields used here). */
export interface ContainerSecurityContext {
  namespaceOptions: NamespaceOption;
  capabilities?: { addCapabilities: string[]; dropCapabilities: string[] };
  privileged?: boolean;
  runAsUser?: { value: number };
  readonlyRootfs?: boolean;
  seccomp?: { profileType: ProfileType };
  apparmor?: { profileType: ProfileType };
}

/** A hostPath volume mount: paths are the node's. */
export interface ContainerMount {
  containerPath: string;
  hostPath: string;
  readonly: boolean;
  propagation: 'PROPAGATION_PRIVATE' | 'PROPAGATION_HOST_TO_CONTAINER' | 'PROPAGATION_BIDIRECTIONAL';
}

export interface ContainerConfig {
  metadata: { name: string; attempt: number };
  image: { image: string };
  command: string[];
  args: string[];
  mounts: ContainerMount[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  logPath: string;
  linux: { securityContext: ContainerSecurityContext };
}

/** The node's network (no CNI), a private pid namespace per container, like the kubelet does for hostNetwork pods. */
const HOST_NETWORK: NamespaceOption = { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' };

export interface PodRequest {
  name: string;
  namespace: string;
  uid: string;
  /** The kubelet's `/var/log/pods/<namespace>_<name>_<uid>`, under some other root. */
  logDirectory: string;
  cgroupParent: string;
}

export function hostNetworkPod(pod: PodRequest): PodSandboxConfig {
  return {
    metadata: { name: pod.name, uid: pod.uid, namespace: pod.namespace, attempt: 0 },
    // CRI refuses an empty hostname unless the pod uses the node's network namespace.
    hostname: '',
    logDirectory: pod.logDirectory,
    labels: { 'io.kubernetes.pod.name': pod.name, 'io.kubernetes.pod.namespace': pod.namespace, 'io.kubernetes.pod.uid': pod.uid },
    annotations: {},
    linux: { cgroupParent: pod.cgroupParent, securityContext: { namespaceOptions: HOST_NETWORK } },
  };
}

export function containerConfig(name: string, image: string, command: string[], args: string[] = []): ContainerConfig {
  return {
    metadata: { name, attempt: 0 },
    image: { image },
    command,
    args,
    mounts: [],
    labels: { 'io.kubernetes.container.name': name },
    annotations: {},
    logPath: `${name}/0.log`,
    linux: { securityContext: { namespaceOptions: HOST_NETWORK } },
  };
}

type Unary = (request: unknown, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, response: unknown) => void) => void;

export class CriClient {
  private readonly client: grpc.Client;

  constructor(socket: string) {
    const definition = protoLoader.loadSync(PROTO, { keepCase: false, longs: String, enums: String, defaults: true });
    const proto = grpc.loadPackageDefinition(definition) as unknown as {
      runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } };
    };
    this.client = new proto.runtime.v1.RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure());
  }

  /** Resolves once the CRI plugin answers (it refuses calls until it has initialised). */
  async waitReady(timeoutMs = 20_000): Promise<{ runtimeName: string; runtimeVersion: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return (await this.call('version', { version: 'v1' }, 2_000)) as { runtimeName: string; runtimeVersion: string };
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(100);
      }
    }
  }

  /** runtimeHandler: one of containerd's runtimes (its default when empty). */
  async runPodSandbox(config: PodSandboxConfig, runtimeHandler = ''): Promise<string> {
    return ((await this.call('runPodSandbox', { config, runtimeHandler })) as { podSandboxId: string }).podSandboxId;
  }

  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    return ((await this.call('createContainer', { podSandboxId, config, sandboxConfig })) as { containerId: string }).containerId;
  }

  async startContainer(containerId: string): Promise<void> {
    await this.call('startContainer', { containerId });
  }

  /** timeout 0: SIGKILL at once. */
  async stopContainer(containerId: string, timeout = 0): Promise<void> {
    await this.call('stopContainer', { containerId, timeout });
  }

  async removeContainer(containerId: string): Promise<void> {
    await this.call('removeContainer', { containerId });
  }

  async stopPodSandbox(podSandboxId: string): Promise<void> {
    await this.call('stopPodSandbox', { podSandboxId });
  }

  async removePodSandbox(podSandboxId: string): Promise<void> {
    await this.call('removePodSandbox', { podSandboxId });
  }

  close(): void {
    this.client.close();
  }

  private call(method: string, request: unknown, timeoutMs = CALL_TIMEOUT_MS): Promise<unknown> {
    const fn = (this.client as unknown as Record<string, Unary>)[method];
    if (fn === undefined) return Promise.reject(new Error(`no CRI method ${method}`));
    return new Promise((resolve, reject) => {
      fn.call(this.client, request, { deadline: Date.now() + timeoutMs }, (err, response) =>
        err ? reject(new Error(`CRI ${method}: ${err.details || err.message}`)) : resolve(response),
      );
    });
  }
}
