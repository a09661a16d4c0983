// Runs inside the arm64 VM (scripts/arm64/vm.sh; the host's job directory is /job): installs
// the packed tarball as a user would on a machine without a compiler, asks `ocinotify doctor`,
// and follows one runc container through `ocinotify watch --json`. Everything it saw goes to
// /job/result.json, which the host's test/arm64/lifecycle.vm.ts judges: nothing is asserted here.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';

const JOB = '/job';
const APP = '/root/app';
const BUNDLE = '/root/bundle';
const RUNC = ['/usr/sbin/runc', '--root', '/run/runc'];
const ID = 'arm64-lifecycle';
// TCG on a busy 2-core host: generous, and the host kills the VM at its own deadline anyway.
const WAIT_MS = 300_000;

const result = { arch: process.arch, kernel: release(), node: process.version, ms: {} };

function run(command, args, opts = {}) {
  const r = spawnSync(command, args, { encoding: 'utf8', ...opts });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function timed(name, fn) {
  const start = Date.now();
  try {
    return await fn();
  } finally {
    result.ms[name] = Date.now() - start;
  }
}

function install() {
  const tarball = readdirSync(JOB).find((f) => f.endsWith('.tgz'));
  mkdirSync(APP, { recursive: true });
  writeFileSync(join(APP, 'package.json'), JSON.stringify({ name: 'app', private: true }));
  const r = run('npm', ['install', join(JOB, tarball), '--offline', '--no-audit', '--no-fund', '--foreground-scripts'], { cwd: APP });
  const pkg = join(APP, 'node_modules', 'ocinotify');
  return { ...r, prebuilt: existsSync(join(pkg, 'prebuilds', 'linux-arm64', 'ocinotify.node')), built: existsSync(join(pkg, 'build')) };
}

function doctor() {
  const r = run('npx', ['ocinotify', 'doctor'], { cwd: APP });
  let report = null;
  try {
    report = JSON.parse(r.stdout);
  } catch {
    // judged on the host: report stays null, stdout is kept
  }
  return { ...r, report };
}

/** `ocinotify watch --json`, its stdout as parsed lines as they come. */
function watcher() {
  const child = spawn(join(APP, 'node_modules', '.bin', 'ocinotify'), ['watch', '--json'], { cwd: APP, stdio: ['ignore', 'pipe', 'pipe'] });
  const w = { child, lines: [], stderr: '', code: undefined };
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop();
    for (const line of parts.filter(Boolean)) w.lines.push(JSON.parse(line));
  });
  child.stderr.setEncoding('utf8').on('data', (d) => (w.stderr += d));
  // A binary that did not install: 'error' instead of a crash of this script, which would leave
  // the host without result.json.
  child.on('error', (err) => (w.stderr += `spawn: ${err.message}\n`));
  w.closed = new Promise((resolve) => child.on('close', (code) => resolve((w.code = code))));
  return w;
}

async function until(what, test) {
  const deadline = Date.now() + WAIT_MS;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A busybox bundle from `runc spec` whose init exits 3, with the host's CRI annotations. */
function bundle() {
  const rootfs = join(BUNDLE, 'rootfs');
  for (const d of ['bin', 'proc', 'dev', 'sys', 'tmp', 'etc']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  symlinkSync('busybox', join(rootfs, 'bin', 'sh'));
  run(RUNC[0], ['spec', '--bundle', BUNDLE]);
  const spec = JSON.parse(readFileSync(join(BUNDLE, 'config.json'), 'utf8'));
  spec.process.terminal = false;
  spec.process.args = ['/bin/sh', '-c', 'exit 3'];
  spec.root = { path: rootfs, readonly: true };
  spec.annotations = JSON.parse(readFileSync(join(JOB, 'annotations.json'), 'utf8'));
  writeFileSync(join(BUNDLE, 'config.json'), JSON.stringify(spec));
}

/** runc through a shell, its output in the job's runc.log: the container's init inherits it. */
function runc(args) {
  return run('/bin/sh', ['-c', 'exec "$@" </dev/null >>/job/runc.log 2>&1', 'sh', ...RUNC, ...args]).code;
}

async function lifecycle() {
  const w = watcher();
  try {
    await until('the ready line', () => w.lines.some((l) => l.type === 'ready') || w.code !== undefined);
    bundle();
    const create = runc(['create', '--bundle', BUNDLE, ID]);
    const start = runc(['start', ID]);
    await until('the exit event', () => w.lines.some((l) => l.type === 'exit' && l.id === ID) || w.code !== undefined);
    const del = runc(['delete', ID]);
    return { create, start, delete: del };
  } finally {
    w.child.kill('SIGTERM');
    await w.closed;
    result.watch = { lines: w.lines, stderr: w.stderr, code: w.code };
  }
}

try {
  result.compilers = run('/bin/sh', ['-c', 'command -v cc gcc g++ clang make']).stdout;
  result.install = await timed('install', install);
  // Nothing after this can run without the package: the host shows npm's own words.
  if (result.install.code !== 0) throw new Error(`npm install exited ${result.install.code}: ${result.install.stderr}`);
  result.doctor = await timed('doctor', doctor);
  result.runc = await timed('lifecycle', lifecycle);
  result.btfSha256 = createHash('sha256').update(readFileSync('/sys/kernel/btf/vmlinux')).digest('hex');
} catch (err) {
  result.error = String(err?.stack ?? err);
} finally {
  writeFileSync(join(JOB, 'result.json'), JSON.stringify(result, null, 1));
}
