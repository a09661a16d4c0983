// Where runtime binaries live, and which of them exist on this host.
import { basename, join } from 'node:path';
import type { RuntimeName } from '../argv.js';
import { liveReads, type HostReads } from './reads.js';

/**
 * Known install paths, per runtime: distribution packages first, then what Kubernetes
 * distributions ship inside their own trees. Paths that do not exist yet are watched all the
 * same: a runtime installed or upgraded there later is picked up (see README, "Runtime binaries").
 */
export const KNOWN_RUNTIME_PATHS: Readonly<Record<RuntimeName, readonly string[]>> = {
  runc: [
    '/usr/sbin/runc', '/usr/bin/runc', '/usr/local/sbin/runc', '/usr/local/bin/runc', '/bin/runc',
    // CRI-O's own packages (pkgs.k8s.io), and Ubuntu's cri-o-runc
    '/usr/libexec/crio/runc', '/usr/lib/cri-o-runc/sbin/runc',
    // k3s extracts its binaries to data/<hash>/bin; `current` points at the running one
    '/var/lib/rancher/k3s/data/current/bin/runc',
    // RKE2: bin is a symlink into data/<version>/bin
    '/var/lib/rancher/rke2/bin/runc',
    '/var/lib/k0s/bin/runc',
    // the snap's `current` points at the running revision
    '/snap/microk8s/current/bin/runc',
    // Bottlerocket's host root as its host containers see it
    '/x86_64-bottlerocket-linux-gnu/sys-root/usr/bin/runc',
    '/aarch64-bottlerocket-linux-gnu/sys-root/usr/bin/runc',
  ],
  crun: ['/usr/bin/crun', '/usr/local/bin/crun', '/usr/sbin/crun', '/usr/libexec/crio/crun'],
  youki: ['/usr/bin/youki', '/usr/local/bin/youki'],
  runsc: ['/usr/bin/runsc', '/usr/local/bin/runsc', '/usr/sbin/runsc'],
  conmon: ['/usr/bin/conmon', '/usr/libexec/podman/conmon', '/usr/local/bin/conmon', '/usr/libexec/crio/conmon'],
};

/** A runtime (runc, crun, youki, runsc: each exec is a session) or a monitor (conmon: names a container, spawns its runtime). */
export type BinaryKind = 'runtime' | 'monitor';

export interface RuntimeBinary {
  /** As marked: the resolved path, under the host root. */
  path: string;
  /** The path it was found by (a symlink, possibly). */
  foundAt: string;
  runtime: RuntimeName;
  kind: BinaryKind;
  /**
   * Found from its first exec (README, "Runtimes anywhere"): the mount namespace of the runtime
   * that ran it, in which `path` is its path (a kind node's, not the host's).
   */
  mntns?: number;
}

export interface DiscoverOptions {
  hostRoot: string;
  /** Extra runtime paths the user gave; their basename names the runtime, runc if unknown. */
  extraPaths: readonly string[];
}

function runtimeForExtra(path: string): RuntimeName {
  const name = basename(path);
  return (Object.keys(KNOWN_RUNTIME_PATHS) as RuntimeName[]).find((r) => name.startsWith(r)) ?? 'runc';
}

export interface RuntimeCandidate {
  runtime: RuntimeName;
  /** under the host root */
  path: string;
  kind: BinaryKind;
}

/** Every path a runtime binary may be at: the known ones, then the user's. */
export function runtimeCandidates(opts: DiscoverOptions): RuntimeCandidate[] {
  const candidates: RuntimeCandidate[] = [];
  const add = (runtime: RuntimeName, p: string): void => {
    const kind: BinaryKind = runtime === 'conmon' ? 'monitor' : 'runtime';
    candidates.push({ runtime, path: join(opts.hostRoot, p), kind });
  };
  for (const [runtime, paths] of Object.entries(KNOWN_RUNTIME_PATHS) as [RuntimeName, readonly string[]][])
    for (const p of paths) add(runtime, p);
  for (const p of opts.extraPaths) add(runtimeForExtra(p), p);
  return candidates;
}

/** Existing runtime binaries, resolved through symlinks, one per inode. */
export function discoverRuntimes(opts: DiscoverOptions): RuntimeBinary[];
/** @internal Through the given host reads (a recording, in replay tests). */
export function discoverRuntimes(opts: DiscoverOptions, reads: HostReads): RuntimeBinary[];
export function discoverRuntimes(opts: DiscoverOptions, reads: HostReads = liveReads): RuntimeBinary[] {
  const found = new Map<string, RuntimeBinary>();
  for (const { runtime, path: foundAt, kind } of runtimeCandidates(opts)) {
    const path = reads.realpath(foundAt);
    const st = path === null ? null : reads.stat(path);
    if (path === null || st === null || !st.isFile) continue;
    const inode = `${st.dev}:${st.ino}`;
    if (!found.has(inode)) found.set(inode, { path, foundAt, runtime, kind });
  }
  return [...found.values()];
}

/**
 * The basenames a runtime can be exec'd by: the file's own and every symlink's that led to it,
 * and every candidate's, so that a runtime nobody named (a kind node's) is known by its name.
 */
export function execNames(binaries: readonly RuntimeBinary[], candidates: readonly RuntimeCandidate[]): string[] {
  const names = new Set<string>();
  for (const b of binaries) {
    names.add(basename(b.path));
    names.add(basename(b.foundAt));
  }
  for (const c of candidates) names.add(basename(c.path));
  return [...names];
}
