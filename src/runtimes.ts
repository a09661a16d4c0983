// Where runtime binaries live, and which of them exist on this host.
import { realpathSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { RuntimeName } from './argv.js';
import { BINARY_KIND } from './native.js';

/** Known install paths, per runtime: distribution packages first, then node distributions. */
export const KNOWN_RUNTIME_PATHS: Readonly<Record<RuntimeName, readonly string[]>> = {
  runc: ['/usr/sbin/runc', '/usr/bin/runc', '/usr/local/sbin/runc', '/usr/local/bin/runc'],
  crun: ['/usr/bin/crun', '/usr/local/bin/crun', '/usr/sbin/crun'],
  youki: ['/usr/bin/youki', '/usr/local/bin/youki'],
  runsc: ['/usr/bin/runsc', '/usr/local/bin/runsc', '/usr/sbin/runsc'],
  conmon: ['/usr/bin/conmon', '/usr/libexec/podman/conmon', '/usr/local/bin/conmon', '/usr/libexec/crio/conmon'],
};

/** The state directory each runtime uses when no `--root` is given. */
export const DEFAULT_STATE_ROOTS: Readonly<Record<RuntimeName, string | null>> = {
  runc: '/run/runc',
  crun: '/run/crun',
  youki: '/run/youki',
  runsc: '/var/run/runsc',
  conmon: null,
};

export interface RuntimeBinary {
  /** As marked: the resolved path, under the host root. */
  path: string;
  /** The path it was found by (a symlink, possibly). */
  foundAt: string;
  runtime: RuntimeName;
  kind: number;
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

/** Existing runtime binaries, resolved through symlinks, one per inode. */
export function discoverRuntimes(opts: DiscoverOptions): RuntimeBinary[] {
  const found = new Map<string, RuntimeBinary>();
  const candidates: [RuntimeName, string][] = [];
  for (const [runtime, paths] of Object.entries(KNOWN_RUNTIME_PATHS) as [RuntimeName, readonly string[]][])
    for (const p of paths) candidates.push([runtime, p]);
  for (const p of opts.extraPaths) candidates.push([runtimeForExtra(p), p]);
  for (const [runtime, p] of candidates) {
    const foundAt = join(opts.hostRoot, p);
    let path: string;
    let inode: string;
    try {
      path = realpathSync(foundAt);
      const st = statSync(path);
      if (!st.isFile()) continue;
      inode = `${st.dev}:${st.ino}`;
    } catch {
      continue;
    }
    if (!found.has(inode))
      found.set(inode, { path, foundAt, runtime, kind: runtime === 'conmon' ? BINARY_KIND.monitor : BINARY_KIND.runtime });
  }
  return [...found.values()];
}

/** The basenames a runtime can be exec'd by: the file's own and every symlink's that led to it. */
export function execNames(binaries: readonly RuntimeBinary[]): string[] {
  const names = new Set<string>();
  for (const b of binaries) {
    names.add(basename(b.path));
    names.add(basename(b.foundAt));
  }
  return [...names];
}
