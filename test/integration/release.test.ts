// `npm pack` is the release: from a fresh clone, prepack (scripts/prepack.sh) builds dist/ and
// the linux-x64 prebuilt into the tarball, or refuses to pack one without that prebuilt.
// Only x64 is asked for here (OCINOTIFY_PREBUILDS): `make test-arm64` packs both.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { privileged } from '../kit/index.js';
import { isCheckout, packFreshClone } from '../kit/pack.js';

const ROOT = new URL('../..', import.meta.url).pathname;

function checkout(): boolean {
  const ok = isCheckout();
  if (!ok && process.env.CI === 'true') throw new Error(`${ROOT} is not a git checkout to clone`);
  return ok;
}

/** Every path package.json points users at: main, module, types, exports, bin. */
function entryPoints(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  const paths: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') paths.push(v.replace(/^\.\//, ''));
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk([pkg.main, pkg.module, pkg.types, pkg.exports, pkg.bin]);
  return paths;
}

/** What may ship: the build's outputs (the addon and its watchdog), the sources a build from source needs, node-addon-api. */
const SHIPPED = [
  /^(package\.json|README\.md|LICENSE|CHANGELOG\.md|Makefile|binding\.gyp|scripts\/install\.mjs|bin\/ocinotify)$/,
  /^dist\/(esm|cjs)\/[\w/.-]+\.(js|d\.ts|js\.map|json)$/,
  /^addon\/\w+\.(cc|h)$/,
  /^bpf\/ocinotify\.(bpf\.c|h)$/,
  /^prebuilds\/linux-(x64|arm64)\/(ocinotify\.node|ocinotify-watchdog)$/,
  /^node_modules\/node-addon-api\//,
];

describe.skipIf(!privileged() || !checkout())('npm pack from a fresh clone', () => {
  let dir: string | undefined;

  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses, saying why, when the linux-x64 prebuilt is neither there nor to be built', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ocinotify-release-'));
    const packed = await packFreshClone(dir, { OCINOTIFY_PREBUILDS: 'none' });
    expect(packed.code).not.toBe(0);
    expect(packed.stderr).toContain('ocinotify prepack: refusing to pack: prebuilds/linux-x64/ocinotify.node is missing');
    expect(readdirSync(dir).filter((f) => f.endsWith('.tgz'))).toEqual([]);
  });

  it('builds dist/ and the linux-x64 prebuilt into the tarball, and nothing else', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ocinotify-release-'));
    const packed = await packFreshClone(dir, { OCINOTIFY_PREBUILDS: 'x64' });
    expect(packed.code, packed.stderr).toBe(0);
    expect(packed.stderr).toMatch(/ocinotify prepack: packing prebuilds\/linux-x64\/ocinotify\.node \(\d+ bytes\)/);
    expect(packed.files).toContain('prebuilds/linux-x64/ocinotify.node');
    expect(packed.files).toContain('prebuilds/linux-x64/ocinotify-watchdog');
    expect(packed.files).not.toContain('prebuilds/linux-arm64/ocinotify.node');
    for (const path of [...entryPoints(), 'dist/cjs/package.json', 'scripts/install.mjs', 'bpf/ocinotify.bpf.c', 'node_modules/node-addon-api/package.json']) {
      expect(packed.files).toContain(path);
    }
    expect(packed.files.filter((f) => !SHIPPED.some((re) => re.test(f)))).toEqual([]);
    // src/ does not ship: a source map is of use to a user's debugger only with the sources in it.
    const maps = packed.files.filter((f) => f.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(0);
    for (const f of maps) {
      const map = JSON.parse(readFileSync(join(dir, 'clone', f), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
      expect(map.sourcesContent?.length, f).toBe(map.sources.length);
      expect(map.sourcesContent!.every((c) => typeof c === 'string' && c.length > 0), f).toBe(true);
    }
  }, 600_000);
});
