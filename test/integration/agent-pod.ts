// The agent's image for pod-like tests under podman, without building one: a rootfs whose /usr
// (node, libc) is the host's, read-only, and whose package directory is this source tree; and
// what such an agent must report of containers created on the host.
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { Recorder, criAnnotations, lifecycle, tail, until, type Lab } from '../kit/index.js';
import type { PodmanLab } from './managers.js';

/** A JSON line of the agent's, as far as the tests read it. */
export interface AgentLine {
  type: string;
  mode?: string;
  id?: string;
  pid?: number | null;
  watcherPid?: number | null;
  held?: boolean;
  pod?: { name: string; namespace: string; uid: string | null } | null;
  container?: { name: string | null };
  bundle?: string | null;
  exitCode?: number | null;
}

/**
 * The agent's JSON lines in file so far, [] before it exists; unwrap takes the JSON out of a
 * line of a log format, undefined for a line that carries none.
 */
export function agentLines(file: string, unwrap: (line: string) => string | undefined = (line) => line): AgentLine[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .map(unwrap)
      .filter((l): l is string => l !== undefined && l !== '')
      .map((l) => JSON.parse(l) as AgentLine);
  } catch {
    return [];
  }
}

/** What a DaemonSet's securityContext gives the agent (README, "Running in a pod"). */
export const POD_PRIVILEGES = [
  '--cap-add', 'SYS_ADMIN,SYS_PTRACE,BPF,PERFMON,DAC_READ_SEARCH',
  '--security-opt', 'seccomp=unconfined',
  '--security-opt', 'apparmor=unconfined',
];

/** The agent's container name under podman. */
export const AGENT = 'ocinotify-agent';

export const REPO = join(import.meta.dirname, '..', '..');

/** An empty rootfs under dir with mount points for mountPoints; /bin, /lib... link into /usr. */
export function agentRootfs(dir: string, mountPoints: readonly string[]): string {
  const rootfs = join(dir, 'agent-rootfs');
  for (const d of ['usr', 'proc', 'sys', 'dev', 'tmp', 'etc', ...mountPoints]) mkdirSync(join(rootfs, d), { recursive: true });
  for (const l of ['bin', 'lib', 'lib64', 'sbin']) if (existsSync(`/${l}`)) symlinkSync(`usr/${l}`, join(rootfs, l));
  return rootfs;
}

/** The image's content as podman volumes: the host's /usr and the package at packageDir. */
export function imageVolumes(packageDir: string): string[] {
  return ['-v', '/usr:/usr:ro', '-v', `${REPO}:${packageDir}:ro`];
}

/**
 * Runs the agent as in-pod.test.ts does (the DaemonSet's privileges, by hand): `watch --json
 * --host-root /host` and watchArgs, its lines in out/events.ndjson, its stderr in
 * out/stderr.log; resolves once it is ready.
 */
export async function runAgent(podman: PodmanLab, rootfs: string, out: string, watchArgs: string[] = [], volumes: string[] = []): Promise<void> {
  const watch = ['node', '/ocinotify/bin/ocinotify', 'watch', '--json', '--host-root', '/host', ...watchArgs].join(' ');
  await podman.podman([
    'run', '-d', '--name', AGENT, '--cgroup-parent', `/${podman.cgroupParent}`,
    ...POD_PRIVILEGES,
    ...imageVolumes('/ocinotify'),
    '-v', '/:/host:ro,rslave',
    '-v', `${out}:/out`,
    ...volumes,
    '--rootfs', rootfs,
    '/bin/sh', '-c', `exec ${watch} >/out/events.ndjson 2>/out/stderr.log`,
  ]);
  await until(() => agentLines(join(out, 'events.ndjson')).some((l) => l.type === 'ready'), () => `the agent to be ready: ${tail(join(out, 'stderr.log'), 20)}`, 20_000);
}

/** Stops the agent and removes what podman and the lab made. */
export async function removeAgent(podman: PodmanLab | undefined, lab: Lab | undefined): Promise<void> {
  await podman?.podman(['stop', '--time', '5', AGENT]).catch(() => undefined);
  await podman?.cleanup();
  await lab?.cleanup();
}

/**
 * Runs a lifecycle of each id on the host, with a watcher of this process as the host's own view,
 * until the agent has reported every exit. The agent must have reported each container's four
 * steps, held at precreate, with its pod and the pid of create as the host sees it; returns each
 * container's lines for what is particular to a test.
 */
export async function expectFollowedFromHost(lab: Lab, ids: string[], lines: () => AgentLine[]): Promise<Map<string, AgentLine[]>> {
  const host = new Recorder({ snapshot: false });
  try {
    for (const id of ids) await lifecycle(lab, host, id, lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id)));
    await until(() => ids.every((id) => lines().some((l) => l.id === id && l.type === 'exit')), 'the agent to report every exit');
    return new Map(
      ids.map((id) => {
        const mine = lines().filter((l) => l.id === id);
        expect(mine.map((l) => l.type), id).toEqual(['precreate', 'create', 'start', 'exit']);
        const [pre, create] = mine;
        expect(pre!.held).toBe(true);
        expect(pre!.pod).toEqual({ name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` });
        expect(create!.pid).toBe(host.of(id, 'create')[0]!.pid);
        return [id, mine];
      }),
    );
  } finally {
    host.close();
  }
}
