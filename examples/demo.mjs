// `make demo`: starts `ocinotify watch`, launches a few real runc containers
// that carry Kubernetes (containerd CRI) annotations, and shows what the
// watcher resolved for each - before the containers' first instruction.
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const RUNC = '/usr/sbin/runc';
const lab = mkdtempSync(join(tmpdir(), 'ocinotify-demo-'));
const state = join(lab, 'state');

const PODS = [
  { ns: 'shop', pod: 'cart-7d9f8c', container: 'cart', image: 'registry.local/shop/cart:1.4', cmd: ['/bin/sleep', '0.3'] },
  { ns: 'shop', pod: 'checkout-5b2c1', container: 'checkout', image: 'registry.local/shop/checkout:2.0', cmd: ['/bin/sh', '-c', 'exit 3'] },
  { ns: 'monitoring', pod: 'node-probe-x2k9', container: 'probe', image: 'registry.local/probe:0.9', cmd: ['/bin/true'] },
];

function rootfs() {
  const dir = join(lab, 'rootfs');
  mkdirSync(join(dir, 'bin'), { recursive: true });
  cpSync('/bin/busybox', join(dir, 'bin', 'busybox'));
  for (const a of ['sh', 'sleep', 'true']) symlinkSync('busybox', join(dir, 'bin', a));
  for (const d of ['proc', 'dev', 'sys', 'tmp']) mkdirSync(join(dir, d));
  return dir;
}

function bundle(p, i, rootfsDir) {
  const dir = join(lab, `bundle-${i}`);
  mkdirSync(dir);
  execFileSync(RUNC, ['spec', '--bundle', dir]);
  const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  spec.process.terminal = false;
  spec.process.args = p.cmd;
  spec.root = { path: rootfsDir, readonly: true };
  const uid = `${(0x5e1d0 + i).toString(16)}a7-5c1d-4f0b-9e3a-00000000000${i}`;
  spec.annotations = {
    'io.kubernetes.cri.container-type': 'container',
    'io.kubernetes.cri.container-name': p.container,
    'io.kubernetes.cri.image-name': p.image,
    'io.kubernetes.cri.sandbox-id': `sandbox${i}`.padEnd(64, '0'),
    'io.kubernetes.cri.sandbox-name': p.pod,
    'io.kubernetes.cri.sandbox-namespace': p.ns,
    'io.kubernetes.cri.sandbox-uid': uid,
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
  return dir;
}

/** Through /bin/sh: see README, "a watcher that spawns runtimes itself". */
function sh(args) {
  return new Promise((resolve) => {
    spawn('/bin/sh', ['-c', 'exec "$@"', 'sh', RUNC, '--root', state, ...args], { stdio: 'ignore' }).on('exit', resolve);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function cleanup(ids) {
  for (const id of ids) await sh(['delete', '--force', id]);
  rmSync(lab, { recursive: true, force: true });
}

const ids = PODS.map((p) => `${p.container}-${process.pid}`);
const watcher = spawn(process.execPath, [join(root, 'bin', 'ocinotify'), 'watch'], { stdio: ['ignore', 'pipe', 'inherit'] });
// Interrupted or not, leave no container, state or watcher behind.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, async () => {
    watcher.kill('SIGTERM');
    await cleanup(ids);
    process.exit(130);
  });
}
process.stdout.on('error', () => undefined);
let shown = '';
watcher.stdout.on('data', (d) => {
  shown += d;
  process.stdout.write(d);
});
try {
  while (!shown.includes('TIME')) {
    if (watcher.exitCode !== null) throw new Error('the watcher exited; see its message above');
    await sleep(20);
  }
  const rootfsDir = rootfs();
  for (const [i, p] of PODS.entries()) {
    const dir = bundle(p, i, rootfsDir);
    await sh(['create', '--bundle', dir, ids[i]]);
    await sh(['start', ids[i]]);
  }
  await sleep(800);
} finally {
  watcher.kill('SIGTERM');
  await cleanup(ids);
}
const code = await new Promise((r) => (watcher.exitCode !== null ? r(watcher.exitCode) : watcher.on('exit', r)));
const exits = (shown.match(/ exit /g) ?? []).length;
console.log(`\n${PODS.length} containers, ${exits} exits reported; watcher exited ${code}.`);
process.exitCode = code === 0 && exits === PODS.length ? 0 : 1;
