// The agent's image for pod-like tests under podman, without building one: a rootfs whose /usr
// (node, libc) is the host's, read-only, and whose package directory is this source tree.
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../kit/index.js';
import type { PodmanLab } from './managers.js';

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

/** Stops the agent and removes what podman and the lab made. */
export async function removeAgent(podman: PodmanLab | undefined, lab: Lab | undefined): Promise<void> {
  await podman?.podman(['stop', '--time', '5', AGENT]).catch(() => undefined);
  await podman?.cleanup();
  await lab?.cleanup();
}
