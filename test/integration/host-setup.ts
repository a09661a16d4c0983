// Machine-wide changes some real runtimes need here, each with its undo, and cgroup cleanup
// for daemons (podman, dockerd) that create a cgroup parent of their own.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../kit/index.js';

const CGROUP_ROOT = '/sys/fs/cgroup';
const HUGETLB_MOUNT = join(CGROUP_ROOT, 'hugetlb');

function cgroupMounts(): { path: string; type: string; options: string }[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes(' - cgroup'))
    .map((line) => {
      const [left, right] = line.split(' - ') as [string, string];
      const [type, , options] = right.split(' ') as [string, string, string];
      return { path: left.split(' ')[4] ?? '', type, options };
    });
}

/**
 * crun 1.8 refuses a hybrid host whose cgroup v2 hierarchy has controllers ("cgroups in hybrid
 * mode not supported"): on this machine only hugetlb is left there. Mounting it on a v1
 * hierarchy of its own moves it off v2. Returns the undo, or null when hugetlb already had a
 * v1 mount (not ours to remove).
 */
export function moveHugetlbToV1(): (() => Promise<void>) | null {
  if (cgroupMounts().some((m) => m.type === 'cgroup' && m.options.split(',').includes('hugetlb'))) return null;
  mkdirSync(HUGETLB_MOUNT, { recursive: true });
  execFileSync('mount', ['-t', 'cgroup', '-o', 'hugetlb', 'cgroup', HUGETLB_MOUNT]);
  return () => restoreHugetlb();
}

/**
 * The v1 hierarchy only goes (and hugetlb back to v2) once it has no child cgroups; unmounting
 * earlier would hide the children from the runtimes that must remove them. Removes the empty
 * ones, waits for busy ones, unmounts, and checks that the hierarchy is really gone (a runtime
 * elsewhere may have made a cgroup meanwhile: then mount it again and repeat). Throws rather
 * than unmount under a live container.
 */
async function restoreHugetlb(timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (hugetlbV1Hierarchy() !== 0) {
    if (!cgroupMounts().some((m) => m.path === HUGETLB_MOUNT)) {
      mkdirSync(HUGETLB_MOUNT, { recursive: true });
      execFileSync('mount', ['-t', 'cgroup', '-o', 'hugetlb', 'cgroup', HUGETLB_MOUNT]);
    }
    const left = removeEmptyChildren(HUGETLB_MOUNT);
    if (left.length === 0) {
      execFileSync('umount', [HUGETLB_MOUNT]);
      rmdirSync(HUGETLB_MOUNT);
    }
    if (Date.now() > deadline) throw new Error(`hugetlb v1 hierarchy still has live cgroups: ${left.join(', ')}`);
    await sleep(200);
  }
}

/** The v1 hierarchy id hugetlb is bound to (0: on cgroup v2), mounted or not. */
function hugetlbV1Hierarchy(): number {
  const line = readFileSync('/proc/cgroups', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('hugetlb\t'));
  return Number(line?.split('\t')[1] ?? 0);
}

/** rmdir's every child cgroup of dir that has no process, deepest first; returns those left. */
function removeEmptyChildren(dir: string): string[] {
  const left: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const child = join(dir, entry.name);
    const below = removeEmptyChildren(child);
    try {
      if (below.length > 0) throw new Error('busy');
      rmdirSync(child);
    } catch {
      left.push(child);
    }
  }
  return left;
}

/** Whether the hybrid v2 hierarchy offers hugetlb again (what the undo restores). */
export function hugetlbOnV2(): boolean {
  const unified = cgroupMounts().find((m) => m.type === 'cgroup2');
  if (!unified) return false;
  return readFileSync(join(unified.path, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('hugetlb');
}

/** Every mounted cgroup hierarchy's directory for this parent name (v1 controllers and v2). */
export function cgroupDirs(parent: string): string[] {
  const dirs = new Set<string>();
  for (const m of cgroupMounts()) {
    if (!m.path.startsWith(CGROUP_ROOT)) continue;
    const dir = join(m.path, parent);
    if (existsSync(dir) && statSync(dir).isDirectory()) dirs.add(dir);
  }
  return [...dirs];
}

/** Removes a cgroup parent a daemon made, in every hierarchy; waits for its last process to go. */
export async function removeCgroupParent(parent: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = cgroupDirs(parent).filter((dir) => {
      const below = removeEmptyChildren(dir);
      if (below.length > 0) return true;
      try {
        rmdirSync(dir);
        return false;
      } catch {
        return true;
      }
    });
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`cgroups left: ${left.join(', ')}`);
    await sleep(100);
  }
}

/** Mount points at or below dir (a daemon's private tree), deepest first. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts whatever a daemon left mounted under dir (it should have left nothing). */
export function unmountUnder(dir: string): string[] {
  const left = mountsUnder(dir);
  for (const p of left) {
    try {
      execFileSync('umount', ['-l', p]);
    } catch {
      // gone meanwhile
    }
  }
  return left;
}
