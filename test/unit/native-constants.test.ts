// The record kinds and flags have one source, bpf/ocinotify.h: the addon exports its enums and
// src/native.ts hands them on, read when first used.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BINARY_KIND, EXIT_KIND, RECORD_FLAG, loadAddon } from '../../src/native.js';

const HEADER = readFileSync(join(import.meta.dirname, '..', '..', 'bpf', 'ocinotify.h'), 'utf8');

/** A C enumerator's value as the header writes them: `4`, `1 << 2`. */
function evaluate(expr: string): number {
  const m = /^(\d+)(?:\s*<<\s*(\d+))?$/.exec(expr.trim());
  if (m === null) throw new Error(`cannot read the enumerator value ${expr}`);
  return Number(m[1]) << Number(m[2] ?? 0);
}

/** enum `name` of the header, its members without `prefix` and in camelCase: OCI_F_ARGS_TRUNCATED -> argsTruncated. */
function headerEnum(name: string, prefix: string): Record<string, number> {
  const body = new RegExp(`enum ${name} \\{([^}]*)\\}`).exec(HEADER)?.[1];
  if (body === undefined) throw new Error(`no enum ${name} in bpf/ocinotify.h`);
  const members: Record<string, number> = {};
  let next = 0;
  const items = body.replace(/\/\*[\s\S]*?\*\//g, '').split(',').map((item) => item.trim());
  for (const item of items.filter((i) => i !== '')) {
    const m = /^(\w+)\s*(?:=\s*(.+))?$/s.exec(item);
    if (m === null || !m[1]!.startsWith(prefix)) throw new Error(`cannot read ${item} in enum ${name}`);
    const value = m[2] === undefined ? next : evaluate(m[2]);
    members[m[1]!.slice(prefix.length).toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = value;
    next = value + 1;
  }
  return members;
}

const FROM_HEADER = {
  exitKind: headerEnum('oci_exit_kind', 'OCI_EXIT_'),
  binaryKind: headerEnum('oci_binary_kind', 'OCI_BIN_'),
  recordFlag: headerEnum('oci_record_flags', 'OCI_F_'),
};

describe('the header enums', () => {
  // First in this file, which vitest runs in a process of its own (the forks pool): nothing has loaded the addon yet.
  it('are read from the addon when first used, not when the package is imported', async () => {
    const addonMapped = (): boolean => readFileSync('/proc/self/maps', 'utf8').includes('ocinotify.node');
    expect(addonMapped()).toBe(false);
    const { discoverRuntimes, runtimeCandidates } = await import('../../src/index.js');
    // What `list` and `doctor` do first: they work where no addon loads.
    runtimeCandidates({ hostRoot: '/', extraPaths: [] });
    discoverRuntimes({ hostRoot: '/', extraPaths: [] });
    expect(addonMapped()).toBe(false);
    expect(EXIT_KIND.runtime).toBe(FROM_HEADER.exitKind.runtime);
    expect(addonMapped()).toBe(true);
  });

  it('are exported by the addon as bpf/ocinotify.h defines them', () => {
    expect(loadAddon().constants).toEqual(FROM_HEADER);
  });

  it('are what src/native.ts exports', () => {
    expect({ exitKind: { ...EXIT_KIND }, binaryKind: { ...BINARY_KIND }, recordFlag: { ...RECORD_FLAG } }).toEqual(FROM_HEADER);
  });
});
