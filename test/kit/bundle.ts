// OCI bundles for real runtimes: a busybox-static root filesystem and config.json from
// `runc spec`, with the process and annotations a test or benchmark asks for.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const RUNC = '/usr/sbin/runc';
const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'sleep', 'true', 'false', 'echo', 'cat', 'ls'];
/** mount points the runtimes need, and /etc, which podman writes into */
const ROOTFS_DIRS = ['proc', 'dev', 'sys', 'tmp', 'etc'];

/** A busybox root filesystem at dir; returns dir. */
export function busyboxRootfs(dir: string): string {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  cpSync(BUSYBOX, join(dir, 'bin', 'busybox'));
  for (const applet of APPLETS) symlinkSync('busybox', join(dir, 'bin', applet));
  for (const d of ROOTFS_DIRS) mkdirSync(join(dir, d));
  return dir;
}

let template: Record<string, unknown> | undefined;

/** `runc spec`, once per process: it writes config.json into dir, which must not have one yet. */
function specTemplate(dir: string): Record<string, unknown> {
  if (template === undefined) {
    execFileSync(RUNC, ['spec', '--bundle', dir]);
    template = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  }
  return structuredClone(template);
}

/** Makes bundle a bundle whose config.json runs args in rootfs (read-only) with these annotations. */
export function writeBundle(bundle: string, rootfs: string, args: string[], annotations: Record<string, string> | null): string {
  mkdirSync(bundle, { recursive: true });
  const spec = specTemplate(bundle);
  const proc = spec.process as Record<string, unknown>;
  proc.terminal = false;
  proc.args = args;
  spec.root = { path: rootfs, readonly: true };
  if (annotations) spec.annotations = annotations;
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
  return bundle;
}

export const CRI_FIXTURE = JSON.parse(
  readFileSync(new URL('../fixtures/oci/containerd-1.6-cri-container.json', import.meta.url), 'utf8'),
) as { annotations: Record<string, string> };

/**
 * The fixture's containerd CRI annotations, made unique per container: pod `pod-<tag>` (uid
 * `uid-<tag>`), container `c-<tag>`, so that every event can be checked against what it names.
 */
export function criAnnotations(tag: string): Record<string, string> {
  return {
    ...CRI_FIXTURE.annotations,
    'io.kubernetes.cri.container-name': `c-${tag}`,
    'io.kubernetes.cri.sandbox-name': `pod-${tag}`,
    'io.kubernetes.cri.sandbox-uid': `uid-${tag}`,
  };
}
