// npm's install step. The package ships a prebuilt addon per platform (prebuilds/, made by
// scripts/build-prebuilt.sh): when there is one for this machine nothing is compiled, so
// installing needs no compiler, no libbpf and no -dev package. Otherwise, or when asked with
// `npm install --build-from-source`, the BPF object and the addon are built here.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const platform = `${process.platform}-${process.arch}`;
// The addon and the watchdog it spawns, side by side.
const prebuilt = ['ocinotify.node', 'ocinotify-watchdog'].every((file) => existsSync(new URL(`../prebuilds/${platform}/${file}`, import.meta.url)));
// The prebuilt addons are linked against glibc; musl (Alpine) builds its own.
const glibc = Boolean(process.report?.getReport().header.glibcVersionRuntime);
// npm sets it from --build-from-source; like prebuild-install, a list of package names works too.
const asked = process.env.npm_config_build_from_source ?? '';
const fromSource = asked === 'true' || asked.split(',').includes('ocinotify');

if (prebuilt && glibc && !fromSource) {
  console.log(`ocinotify: using the prebuilt addon for ${platform}`);
} else {
  const root = new URL('..', import.meta.url);
  console.log(`ocinotify: building the addon from source (needs clang, bpftool, g++, make, libbpf-dev)`);
  execFileSync('make', ['--no-print-directory', 'bpf'], { cwd: root, stdio: 'inherit' });
  // node-gyp: the one npm puts on PATH for install scripts.
  execFileSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit' });
}
