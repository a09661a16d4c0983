// The package as users get it: `npm pack`, published to a registry (verdaccio on a loopback
// port, test/kit/registry.ts), installed by name into an empty project on a PATH with no
// compiler, then used through `require`, `import` and `npx` to see a real runc container, and
// type-checked by TypeScript consumers. make test-node-matrix runs it on each Node line.
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, RUNC, privileged } from '../kit/index.js';
import { type Registry, startRegistry, verdaccioDir } from '../kit/registry.js';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const PREBUILT = join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`, 'ocinotify.node');
const NPM = '/usr/lib/node_modules/npm/bin';
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

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

/** An empty project at dir/name; returns its path. */
function project(dir: string, name: string): string {
  const path = join(dir, name);
  mkdirSync(path);
  writeFileSync(join(path, 'package.json'), JSON.stringify({ name, private: true }));
  return path;
}

const VERDACCIO = verdaccioDir();

describe.skipIf(!privileged() || !havePrebuilt() || VERDACCIO === null)(`npm install ocinotify from a registry, on node ${process.version}`, () => {
  let dir: string;
  let app: string;
  let lab: Lab;
  let registry: Registry | undefined;
  /** npm's environment: the registry, a cache and HOME of the test's own */
  let npmEnv: NodeJS.ProcessEnv;
  /** and a PATH with node, npm, npx and sh only: no cc, gcc, clang, make, pkg-config or bpftool */
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ocinotify-pack-'));
    lab = new Lab();
    registry = await startRegistry(VERDACCIO!);
    npmEnv = { HOME: dir, npm_config_userconfig: registry.npmrc, npm_config_cache: join(dir, 'npm-cache') };
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, 'node'));
    symlinkSync(join(NPM, 'npm-cli.js'), join(bin, 'npm'));
    symlinkSync(join(NPM, 'npx-cli.js'), join(bin, 'npx'));
    symlinkSync('/bin/sh', join(bin, 'sh'));
    env = { PATH: bin, ...npmEnv };
    await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: ROOT });
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    await run('npm', ['publish', join(dir, tarball)], { cwd: dir, env });
    app = project(dir, 'app');
    await run('npm', ['install', 'ocinotify', '--no-audit', '--no-fund'], { cwd: app, env });
  }, 180_000);

  afterAll(async () => {
    await registry?.stop();
    await lab?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('installs by name from the registry, with no compiler on PATH and compiling nothing', async () => {
    expect(() => execFileSync('/bin/sh', ['-c', 'command -v cc gcc g++ clang make'], { env })).toThrow();
    const { stdout } = await run('npm', ['view', 'ocinotify', 'version', 'dist.tarball', '--json'], { cwd: app, env });
    expect(JSON.parse(stdout)).toEqual({ version: VERSION, 'dist.tarball': `${registry!.url}ocinotify/-/ocinotify-${VERSION}.tgz` });
    const pkg = join(app, 'node_modules', 'ocinotify');
    const prebuilt = join(pkg, 'prebuilds', `${process.platform}-${process.arch}`);
    expect(existsSync(join(prebuilt, 'ocinotify.node'))).toBe(true);
    expect(statSync(join(prebuilt, 'ocinotify-watchdog')).mode & 0o111).toBe(0o111);
    expect(existsSync(join(pkg, 'build'))).toBe(false);
    expect(readdirSync(join(app, 'node_modules')).filter((f) => !f.startsWith('.'))).toEqual(['ocinotify']);
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

  it('npx ocinotify doctor', async () => {
    const { stdout } = await run('npx', ['ocinotify', 'doctor'], { cwd: app, env });
    const report = JSON.parse(stdout) as { mode: string; runtimes: { path: string }[] };
    expect(report.mode).toBe('full');
    expect(report.runtimes.map((r) => r.path)).toContain(RUNC);
  });

  // The package's declarations as consumers compile them: ESM and CommonJS under node16, and
  // bundler; strict, and the declarations themselves checked (no skipLibCheck).
  it.each([
    ['node16', { module: 'node16', moduleResolution: 'node16' }, ['esm.mts', 'cjs.cts']],
    ['bundler', { module: 'esnext', moduleResolution: 'bundler' }, ['bundler.ts']],
  ])('type-checks a TypeScript consumer under moduleResolution %s', async (name, options, files) => {
    const sample = join(ROOT, 'test/fixtures/consumer/sample.ts');
    for (const f of files) copyFileSync(sample, join(app, f));
    const compilerOptions = { ...options, strict: true, target: 'es2022', noEmit: true, types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')] };
    writeFileSync(join(app, `tsconfig.${name}.json`), JSON.stringify({ compilerOptions, files }));
    // tsc prints the files it read, then its errors, if any (and exits non-zero).
    const tsc = await run(process.execPath, [TSC, '-p', `tsconfig.${name}.json`, '--listFiles'], { cwd: app }).catch(
      (err: { stdout?: string }) => ({ stdout: err.stdout ?? String(err) }),
    );
    const lines = tsc.stdout.split('\n');
    expect(lines.filter((l) => /(^|\s)error TS\d+:/.test(l))).toEqual([]);
    for (const d of name === 'node16' ? ['esm', 'cjs'] : ['esm']) {
      expect(lines).toContain(join(app, `node_modules/ocinotify/dist/${d}/index.d.ts`));
      expect(lines).toContain(join(app, `node_modules/ocinotify/dist/${d}/annotations/index.d.ts`));
    }
  });

  it('compiles the addon with npm install --build-from-source', async () => {
    const other = project(dir, 'from-source');
    // The machine's own PATH: this one has the compiler, libbpf-dev, clang and bpftool.
    await run('npm', ['install', 'ocinotify', '--build-from-source', '--no-audit', '--no-fund'], {
      cwd: other,
      env: { ...process.env, ...npmEnv },
    });
    for (const built of ['ocinotify.node', 'ocinotify-watchdog'])
      expect(existsSync(join(other, 'node_modules', 'ocinotify', 'build', 'Release', built)), built).toBe(true);
  });
});
