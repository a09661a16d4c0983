// deploy/daemonset.yaml and deploy/Containerfile read as the cluster would read them, and turned
// into the podman arguments that give a container the same privileges and mounts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerConfig, ContainerMount, ContainerSecurityContext } from '../kit/cri/client.js';

type Yaml = string | number | boolean | null | Yaml[] | { [key: string]: Yaml };

interface Line {
  indent: number;
  text: string;
  no: number;
}

/**
 * The block YAML subset deploy/ is written in: maps, `- ` lists, plain, quoted and
 * JSON-flow scalars, comments on lines of their own. Anything else throws, so the
 * manifest cannot silently mean more to Kubernetes than to the test.
 */
export function parseYaml(text: string): Yaml {
  const lines: Line[] = [];
  text.split('\n').forEach((raw, i) => {
    const body = raw.trimStart();
    if (body === '' || body.startsWith('#') || body === '---') return;
    if (raw.includes('\t')) throw new Error(`line ${i + 1}: tab`);
    if (/\s#/.test(body) && !/^[^"']*["'][^#]*["']\s*$/.test(body)) throw new Error(`line ${i + 1}: trailing comment`);
    lines.push({ indent: raw.length - body.length, text: body.trimEnd(), no: i + 1 });
  });
  let at = 0;
  const block = (indent: number): Yaml => (lines[at]!.text.startsWith('- ') ? list(indent) : map(indent));
  const map = (indent: number): Yaml => {
    const out: Record<string, Yaml> = {};
    while (at < lines.length && lines[at]!.indent === indent && !lines[at]!.text.startsWith('- ')) {
      const line = lines[at++]!;
      const m = /^([A-Za-z0-9_./-]+):(?: (.*))?$/.exec(line.text);
      if (!m) throw new Error(`line ${line.no}: not 'key: value': ${line.text}`);
      if (m[1]! in out) throw new Error(`line ${line.no}: duplicate key ${m[1]}`);
      if (m[2] !== undefined) out[m[1]!] = scalar(m[2], line.no);
      else if (at < lines.length && lines[at]!.indent > indent) out[m[1]!] = block(lines[at]!.indent);
      else throw new Error(`line ${line.no}: ${m[1]} has no value`);
    }
    return out;
  };
  const list = (indent: number): Yaml => {
    const out: Yaml[] = [];
    while (at < lines.length && lines[at]!.indent === indent && lines[at]!.text.startsWith('- ')) {
      const line = lines[at]!;
      const item = line.text.slice(2);
      if (/^[A-Za-z0-9_./-]+:( |$)/.test(item)) {
        lines[at] = { indent: indent + 2, text: item, no: line.no }; // the item's first key
        out.push(map(indent + 2));
      } else {
        at++;
        out.push(scalar(item, line.no));
      }
    }
    return out;
  };
  const result = block(0);
  if (at !== lines.length) throw new Error(`line ${lines[at]!.no}: unexpected indentation`);
  return result;
}

function scalar(text: string, no: number): Yaml {
  if (/^["[{]/.test(text)) {
    try {
      return JSON.parse(text) as Yaml;
    } catch {
      throw new Error(`line ${no}: only JSON-compatible flow and double-quoted scalars: ${text}`);
    }
  }
  if (text.startsWith("'")) return text.slice(1, -1).replace(/''/g, "'");
  if (/^(true|false)$/.test(text)) return text === 'true';
  if (text === 'null' || text === '~') return null;
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (/^[&*!|>]/.test(text)) throw new Error(`line ${no}: anchors, tags and block scalars are not used here`);
  return text;
}

const REPO = join(import.meta.dirname, '..', '..');

export interface AgentContainer {
  name: string;
  image: string;
  args: string[];
  securityContext: {
    privileged?: boolean;
    runAsUser?: number;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
    seccompProfile?: { type: string };
    appArmorProfile?: { type: string };
  };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; mountPropagation?: string }[];
  resources?: { limits?: { memory?: string; cpu?: string } };
}

export interface PodSpec {
  hostPID?: boolean;
  containers: AgentContainer[];
  volumes?: { name: string; hostPath?: { path: string } }[];
}

export function readDaemonSet(path = join(REPO, 'deploy', 'daemonset.yaml')): { kind: string; spec: { template: { spec: PodSpec } } } {
  return parseYaml(readFileSync(path, 'utf8')) as never;
}

/** The image's ENTRYPOINT (exec form) from the Containerfile. */
export function readEntrypoint(path = join(REPO, 'deploy', 'Containerfile')): string[] {
  const line = readFileSync(path, 'utf8').split('\n').filter((l) => l.startsWith('ENTRYPOINT ')).pop();
  if (!line) throw new Error('Containerfile has no ENTRYPOINT');
  return JSON.parse(line.slice('ENTRYPOINT '.length)) as string[];
}

const PROPAGATION: Record<string, string> = { None: 'rprivate', HostToContainer: 'rslave', Bidirectional: 'rshared' };

/** Kubernetes memory quantity -> podman's --memory. */
function memory(q: string): string {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(q);
  if (!m) throw new Error(`memory quantity ${q}`);
  return `${m[1]}${{ Ki: 'k', Mi: 'm', Gi: 'g' }[m[2] ?? ''] ?? 'b'}`;
}

/**
 * podman run arguments for the pod spec's one container: its privileges, host mounts with
 * their propagation, security profiles, pid namespace and memory limit; then the image's
 * entrypoint and the container's args. Fields this does not translate throw.
 */
export function podmanArgs(pod: PodSpec, entrypoint: string[]): { options: string[]; args: string[] } {
  if (pod.containers.length !== 1) throw new Error('one container expected');
  const c = pod.containers[0]!;
  const sc = c.securityContext;
  const args: string[] = [];
  if (pod.hostPID) args.push('--pid', 'host');
  if (sc.privileged) args.push('--privileged');
  if (sc.runAsUser !== undefined) args.push('--user', String(sc.runAsUser));
  if (sc.readOnlyRootFilesystem) args.push('--read-only', '--read-only-tmpfs=false');
  for (const cap of sc.capabilities?.drop ?? []) args.push('--cap-drop', cap);
  if (sc.capabilities?.add?.length) args.push('--cap-add', sc.capabilities.add.join(','));
  const profile = (p: { type: string } | undefined, what: string) => {
    if (p === undefined) return;
    if (p.type !== 'Unconfined') throw new Error(`${what} ${p.type}: only Unconfined is translated`);
    args.push('--security-opt', `${what}=unconfined`);
  };
  profile(sc.seccompProfile, 'seccomp');
  profile(sc.appArmorProfile, 'apparmor');
  for (const m of c.volumeMounts ?? []) {
    const host = pod.volumes?.find((v) => v.name === m.name)?.hostPath?.path;
    if (host === undefined) throw new Error(`volume ${m.name} is not a hostPath`);
    const opts = [m.readOnly ? 'ro' : 'rw', PROPAGATION[m.mountPropagation ?? 'None']];
    args.push('-v', `${host}:${m.mountPath}:${opts.join(',')}`);
  }
  if (c.resources?.limits?.memory) args.push('--memory', memory(c.resources.limits.memory));
  args.push('--entrypoint', JSON.stringify(entrypoint));
  return { options: args, args: c.args };
}

const CRI_PROPAGATION: Record<string, ContainerMount['propagation']> = {
  None: 'PROPAGATION_PRIVATE',
  HostToContainer: 'PROPAGATION_HOST_TO_CONTAINER',
  Bidirectional: 'PROPAGATION_BIDIRECTIONAL',
};

/**
 * What the kubelet asks of CRI for the pod spec's one container: the image's entrypoint as
 * command, the container's args, its hostPath mounts with their propagation, and its security
 * context. Fields this does not translate throw.
 */
export function criAgent(pod: PodSpec, entrypoint: string[]): Pick<ContainerConfig, 'command' | 'args' | 'mounts'> & { securityContext: Omit<ContainerSecurityContext, 'namespaceOptions'>; hostPID: boolean } {
  if (pod.containers.length !== 1) throw new Error('one container expected');
  const c = pod.containers[0]!;
  const sc = c.securityContext;
  const profile = (p: { type: string } | undefined, what: string): { profileType: 'Unconfined' } | undefined => {
    if (p === undefined) return undefined;
    if (p.type !== 'Unconfined') throw new Error(`${what} ${p.type}: only Unconfined is translated`);
    return { profileType: 'Unconfined' };
  };
  const mounts = (c.volumeMounts ?? []).map((m): ContainerMount => {
    const host = pod.volumes?.find((v) => v.name === m.name)?.hostPath?.path;
    if (host === undefined) throw new Error(`volume ${m.name} is not a hostPath`);
    return { containerPath: m.mountPath, hostPath: host, readonly: m.readOnly === true, propagation: CRI_PROPAGATION[m.mountPropagation ?? 'None']! };
  });
  return {
    command: entrypoint,
    args: c.args,
    mounts,
    hostPID: pod.hostPID === true,
    securityContext: {
      capabilities: { addCapabilities: sc.capabilities?.add ?? [], dropCapabilities: sc.capabilities?.drop ?? [] },
      privileged: sc.privileged === true,
      ...(sc.runAsUser === undefined ? {} : { runAsUser: { value: sc.runAsUser } }),
      readonlyRootfs: sc.readOnlyRootFilesystem === true,
      ...(profile(sc.seccompProfile, 'seccomp') === undefined ? {} : { seccomp: profile(sc.seccompProfile, 'seccomp')! }),
      ...(profile(sc.appArmorProfile, 'apparmor') === undefined ? {} : { apparmor: profile(sc.appArmorProfile, 'apparmor')! }),
    },
  };
}
