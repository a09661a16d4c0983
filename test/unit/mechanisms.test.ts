// The kernel mechanisms have one list, src/cli/mechanisms.ts: the addon's probes answer by its
// names, and README's table says what it says.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { MECHANISMS } from '../../src/cli/mechanisms.js';
import { loadAddon } from '../../src/native.js';

const README = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

it('the addon probes exactly the listed mechanisms, in their order', () => {
  expect(loadAddon().probeKernel().map((m) => m.name)).toEqual(MECHANISMS.map((m) => m.name));
});

it("README's mechanism table is the list, row for row", () => {
  const header = '| mechanism | Linux | for | without it |\n|---|---|---|---|\n';
  const rows = MECHANISMS.map((m) => `| \`${m.name}\` | ${m.since} | ${m.for} | ${m.without} |`).join('\n');
  expect(README.includes(`${header}${rows}\n\n`), 'README.md "Modes and kernel requirements" differs from src/cli/mechanisms.ts').toBe(true);
});
