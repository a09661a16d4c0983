// The published package: `npm pack`, installed into an empty project on a PATH with no
// compiler, then used from `require` and `import` to see a real runc container.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, RUNC, privileged } from '../kit/index.js';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const PREBUILT = join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`, 'ocinotify.node');
const NPM_CLI = '/usr/lib/node_modules/npm/bin/npm-cli.js';

function havePrebuilt(): boolean {
  const ok = existsSync(PREBUILT);
  if (!ok && process.env.CI === 'true') throw new Error(`${PREBUILT} is missing: run \`make prebuilt\``);
  return ok;
}

// What a user's program does: start a watcher, create a container through /bin/sh (node's
// spawn waits for the child's exec, and runc's exec is held until this process answers),
// print the events of that container until its 'create', and whether its watchdog (an
// executable beside the addon) runs.
const WATCH = `
const w = new ContainerWatcher();
const seen = [];
const done = (code) => { const watchdogPid = w.stats().watchdogPid; w.close(); console.log(JSON.stringify({ mode: w.mode, seen, watchdogPid })); process.exit(code); };
w.on('event', (e) => { if (e.id === process.env.ID) { seen.push(e.type); if (e.type === 'create') done(0); } });
const argv = ['-c', 'exec "$@"', 'sh', process.env.RUNC, '--root', process.env.RUNC_ROOT, 'create', '--bundle', process.env.BUNDLE, process.env.ID];
spawn('/bin/sh', argv, { stdio: 'ignore' }).on('exit', (code) => { if (code !== 0) { console.error('runc create: ' + code); done(2); } });
setTimeout(() => { console.error('no create event'); done(3); }, 20000);
`;
const CJS = `const { ContainerWatcher } = require('ocinotify'); const { spawn } = require('node:child_process');${WATCH}`;
const ESM = `import { ContainerWatcher } from 'ocinotify'; import { spawn } from 'node:child_process';${WATCH}`;

describe.skipIf(!privileged() || !havePrebuilt())('npm pack + install without a compiler', () => {
  let dir: string;
  let app: string;
  let lab: Lab;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ocinotify-pack-'));
    lab = new Lab();
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT });
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    // A PATH with node, npm and sh only: no cc, gcc, clang, make, pkg-config or bpftool.
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, 'node'));
    symlinkSync(NPM_CLI, join(bin, 'npm'));
    symlinkSync('/bin/sh', join(bin, 'sh'));
    env = { PATH: bin, HOME: dir, npm_config_cache: join(dir, 'npm-cache') };
    app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
    await run('npm', ['install', `../${tarball}`, '--offline', '--no-audit', '--no-fund'], { cwd: app, env });
  }, 120_000);

  afterAll(async () => {
    await lab?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('installs with no compiler on PATH, no libbpf in LD_LIBRARY_PATH, and compiles nothing', () => {
    expect(() => execFileSync('/bin/sh', ['-c', 'command -v cc gcc g++ clang make'], { env })).toThrow();
    expect(env.LD_LIBRARY_PATH).toBeUndefined();
    const pkg = join(app, 'node_modules', 'ocinotify');
    const prebuilt = join(pkg, 'prebuilds', `${process.platform}-${process.arch}`);
    expect(existsSync(join(prebuilt, 'ocinotify.node'))).toBe(true);
    expect(statSync(join(prebuilt, 'ocinotify-watchdog')).mode & 0o111).toBe(0o111);
    expect(existsSync(join(pkg, 'build'))).toBe(false);
    expect(readdirSync(join(app, 'node_modules')).filter((f) => !f.startsWith('.'))).toEqual(['ocinotify']);
  });

  it('compiles the addon with npm install --build-from-source', async () => {
    const other = join(dir, 'from-source');
    mkdirSync(other);
    writeFileSync(join(other, 'package.json'), JSON.stringify({ name: 'from-source', private: true }));
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    // The machine's own PATH: this one has the compiler, libbpf-dev, clang and bpftool.
    await run('npm', ['install', `../${tarball}`, '--build-from-source', '--offline', '--no-audit', '--no-fund'], {
      cwd: other,
      env: { ...process.env, HOME: dir, npm_config_cache: join(dir, 'npm-cache') },
    });
    for (const built of ['ocinotify.node', 'ocinotify-watchdog'])
      expect(existsSync(join(other, 'node_modules', 'ocinotify', 'build', 'Release', built)), built).toBe(true);
  });

  it.each([
    ['require', ['-e', CJS]],
    ['import', ['--input-type=module', '-e', ESM]],
  ])('sees a real runc container through %s', async (how, args) => {
    const id = `pkg-${how}-${process.pid}`;
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], null);
    const { stdout } = await run(process.execPath, args, {
      cwd: app,
      env: { ...env, ID: id, BUNDLE: bundle, RUNC, RUNC_ROOT: lab.stateRoot },
    });
    const result = JSON.parse(stdout) as { mode: string; seen: string[]; watchdogPid: number };
    expect(result.mode).toBe('full');
    expect(result.seen).toEqual(['precreate', 'create']);
    expect(result.watchdogPid).toBeGreaterThan(0);
  });
});
