// docs/api.md is generated: it must say what the exported declarations say now.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '..', '..');

it('docs/api.md is current (regenerate with `make docs`)', () => {
  const generated = execFileSync(process.execPath, [join(REPO, 'scripts', 'api-docs.mjs')], { encoding: 'utf8' });
  expect(readFileSync(join(REPO, 'docs', 'api.md'), 'utf8') === generated, 'docs/api.md is stale: run `make docs`').toBe(true);
}, 60_000);
