// The test kit itself: what bench/ may rely on, and the waits every integration test uses.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Collected } from '../kit/child.js';
import { until } from '../kit/wait.js';

const KIT = fileURLToPath(new URL('../kit/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('test/kit', () => {
  it('imports neither vitest nor the integration tests: the benchmarks run without them', () => {
    const offending = sources(KIT).filter((file) => /from '(vitest|[./]*\/integration\/[^']*)'/.test(readFileSync(file, 'utf8')));
    expect(offending).toEqual([]);
  });

  it('until resolves once the predicate holds, async or not, and rejects saying what it waited for', async () => {
    let n = 0;
    await until(() => ++n >= 3, 'three polls');
    expect(n).toBe(3);
    await until(async () => true, 'an async predicate');
    await expect(until(() => false, () => 'what never comes', 30)).rejects.toThrow(/timed out after 30 ms waiting for what never comes/);
    await expect(until(() => { throw new Error('broken'); }, 'a predicate that throws')).rejects.toThrow('broken');
  });

  it('Collected reads stdout as lines and JSON records across writes, and keeps stderr', async () => {
    const script = `process.stdout.write('{"a":1}\\n{"a"'); setTimeout(() => { process.stdout.write(':2}\\n\\n'); process.stderr.write('said'); }, 20);`;
    const child = new Collected(process.execPath, ['-e', script]);
    expect(await child.done).toBe(0);
    expect(child.lines()).toEqual(['{"a":1}', '{"a":2}']);
    expect(child.records()).toEqual([{ a: 1 }, { a: 2 }]);
    expect(child.stdout()).toBe('{"a":1}\n{"a":2}\n\n');
    expect(child.stderr()).toBe('said');
  });
});
