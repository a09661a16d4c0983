// Privacy: a container's env holds secrets. No event, diagnostic or CLI line carries an env
// value or the spec unless the user opted in with includeSpec / --include-spec.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEvent } from '../../src/index.js';
import { Lab, criAnnotations, lifecycle, ocinotify, privileged, until } from '../kit/index.js';
import { Observer } from './hostile.js';

describe.skipIf(!privileged())('privacy: env values never leave without includeSpec', () => {
  let lab: Lab;
  const suffix = process.pid.toString(36);
  const secret = `s3cr3t-${randomBytes(8).toString('hex')}`;

  beforeAll(() => {
    lab = new Lab();
  });

  afterAll(async () => {
    await lab?.cleanup();
  });

  /** A bundle whose process env and args hold the secret. */
  function secretBundle(id: string): string {
    const bundle = lab.bundle(id, ['/bin/sh', '-c', 'sleep 30', secret], criAnnotations(id));
    const path = join(bundle, 'config.json');
    const spec = JSON.parse(readFileSync(path, 'utf8')) as { process: { env: string[] } };
    spec.process.env.push(`API_TOKEN=${secret}`);
    writeFileSync(path, JSON.stringify(spec));
    return bundle;
  }

  for (const includeSpec of [false, true]) {
    it(`API, includeSpec ${includeSpec}: ${includeSpec ? 'precreate serialises the spec, env included' : 'no serialised event carries the env'}`, async () => {
      const obs = new Observer({ includeSpec });
      try {
        const id = `pv-api-${includeSpec}-${suffix}`;
        await lifecycle(lab, obs, id, secretBundle(id));
        const events = obs.of(id);
        expect(events.map((e) => e.type)).toEqual(['precreate', 'create', 'start', 'exit']);
        const pre = events[0] as ContainerEvent;
        // The gate and listeners can always read it; serialising is what includeSpec decides.
        expect(pre.spec?.process?.env).toContain(`API_TOKEN=${secret}`);
        const serialised = JSON.stringify([...events, ...obs.diagnostics]);
        if (includeSpec) {
          expect(JSON.stringify(pre)).toContain(`API_TOKEN=${secret}`);
          expect(JSON.stringify(events.slice(1))).not.toContain(secret);
        } else {
          expect(serialised).not.toContain(secret);
          expect(Object.keys(pre)).not.toContain('spec');
        }
        obs.expectSound();
      } finally {
        obs.close();
      }
    });
  }

  /** `ocinotify watch --json [extra]` while a container with the secret runs; its stdout lines. */
  async function cliLines(id: string, extra: string[]): Promise<string[]> {
    const cli = ocinotify(['watch', '--json', ...extra]);
    const mine = (): string[] => cli.lines().filter((l) => l.includes(`"id":"${id}"`));
    try {
      await until(() => cli.stdout().includes('"type":"ready"'), () => `the CLI to be ready (${cli.stderr()})`);
      const bundle = secretBundle(id);
      await lab.runc(['create', '--bundle', bundle, id]);
      await lab.runc(['start', id]);
      await lab.runc(['delete', '--force', id]);
      await until(() => mine().some((l) => l.includes('"type":"exit"')), 'the CLI to report exit');
    } finally {
      cli.child.kill('SIGTERM');
      await cli.done;
    }
    return mine();
  }

  it('CLI --json: no line carries the env; with --include-spec the precreate line does', async () => {
    const plain = await cliLines(`pv-cli-${suffix}`, []);
    expect(plain.map((l) => (JSON.parse(l) as { type: string }).type)).toEqual(['precreate', 'create', 'start', 'exit']);
    expect(plain.join('\n')).not.toContain(secret);
    const opted = await cliLines(`pv-cli-spec-${suffix}`, ['--include-spec']);
    const pre = JSON.parse(opted[0]!) as ContainerEvent;
    expect(pre.type).toBe('precreate');
    expect(pre.spec?.process?.env).toContain(`API_TOKEN=${secret}`);
    expect(opted.slice(1).join('\n')).not.toContain(secret);
  });
});
