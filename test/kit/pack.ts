// The release as a maintainer makes it: `npm pack` in a fresh clone, where dist/ and prebuilds/
// (untracked) exist only if the package's prepack builds them.
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = new URL('../..', import.meta.url).pathname;

export interface Packed {
  /** npm's exit code; the rest is empty unless 0 */
  code: number;
  /** what prepack and npm said (prepack writes only there) */
  stderr: string;
  tarball: string;
  files: string[];
}

/**
 * `npm pack --json` in a fresh clone (dir/clone) of this checkout's HEAD - uncommitted changes
 * are not in it - with env added to the environment; the tarball goes to dir.
 */
export function packFreshClone(dir: string, env: NodeJS.ProcessEnv = {}): Promise<Packed> {
  const clone = join(dir, 'clone');
  const head = execFileSync('git', ['-C', ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  execFileSync('git', ['clone', '--quiet', '--no-checkout', ROOT, clone]);
  execFileSync('git', ['-C', clone, 'checkout', '--quiet', head]);
  return new Promise((resolve) => {
    execFile(
      'npm',
      ['pack', '--json', '--pack-destination', dir],
      { cwd: clone, env: { ...process.env, ...env }, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        if (code !== 0) return resolve({ code, stderr, tarball: '', files: [] });
        const [pack] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
        resolve({ code, stderr, tarball: join(dir, pack!.filename), files: pack!.files.map((f) => f.path) });
      },
    );
  });
}

/** Whether this tree is a git checkout to clone (a copy of it, as the Node matrix runs in, is not). */
export function isCheckout(): boolean {
  try {
    execFileSync('git', ['-C', ROOT, 'rev-parse', '--is-inside-work-tree'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
