// config.json as the addon read it ahead (ExecRecord.spec), in a recorded stream: used only for
// the path the argv parser computes, and a read that hung is said, not tried again on the
// JavaScript thread.
import { expect, it } from 'vitest';
import type { ExecRecord, PrefetchedSpec } from '../../src/native.js';
import { readFixture } from './fixture.js';
import { ReplayPort } from './replay-port.js';

const FAKE = Buffer.from(
  JSON.stringify({
    annotations: {
      'io.kubernetes.cri.container-type': 'container',
      'io.kubernetes.cri.container-name': 'c',
      'io.kubernetes.cri.sandbox-name': 'read-ahead-pod',
      'io.kubernetes.cri.sandbox-namespace': 'read-ahead',
      'io.kubernetes.cri.sandbox-uid': 'u',
    },
  }),
);

/**
 * The runc fixture replayed with its first creation's read ahead changed; the runtime's root
 * still there (the recording read it only after the runtime exited). Its precreate.
 */
async function replayWith(change: (spec: PrefetchedSpec) => PrefetchedSpec): Promise<{ port: ReplayPort; precreate: Record<string, unknown> }> {
  const fixture = readFixture('runc');
  const at = fixture.log.findIndex((e) => 'batch' in e && e.batch.some((r) => r.kind === 'exec' && r.spec?.bytes != null));
  const entry = fixture.log[at] as { batch: ExecRecord[] };
  const rec = entry.batch.find((r) => r.spec?.bytes != null)!;
  const spec = rec.spec!;
  rec.spec = change(spec);
  fixture.log.splice(at, 0, { read: 'readlink', args: [spec.root], result: '/' });
  // Reads the change makes unasked are given up on soon: they are not what is tested.
  const port = new ReplayPort(fixture, 100);
  const watcher = port.watch();
  await port.done;
  watcher.close();
  const bundle = spec.path.slice(0, -'/config.json'.length);
  const precreate = port.emitted.find((e) => e.on === 'event' && e.payload.type === 'precreate' && e.payload.bundle === bundle);
  return { port, precreate: precreate!.payload };
}

it('uses the bytes read ahead for the path the argv names', async () => {
  const { precreate } = await replayWith((s) => ({ ...s, bytes: FAKE }));
  expect(precreate.pod).toMatchObject({ name: 'read-ahead-pod', namespace: 'read-ahead' });
});

it('leaves unused a read ahead of another path than the argv names', async () => {
  const { precreate } = await replayWith((s) => ({ ...s, path: '/elsewhere/config.json', bytes: FAKE }));
  expect(JSON.stringify(precreate)).not.toContain('read-ahead-pod');
});

it('reports a read still hanging when its record left as ERR_SPEC_SLOW, and reads it not again', async () => {
  const { port, precreate } = await replayWith((s) => ({ ...s, bytes: null, slow: true }));
  expect(precreate.specError).toMatchObject({ code: 'ERR_SPEC_SLOW' });
  expect(port.emitted.filter((e) => e.on === 'diagnostic').map((e) => e.payload.code)).toContain('ERR_SPEC_SLOW');
});

it('reports a failed read ahead as the watcher reports that error', async () => {
  const { precreate } = await replayWith((s) => ({ ...s, bytes: null, error: 'ELOOP' }));
  expect(precreate.specError).toMatchObject({ code: 'ERR_SPEC_SYMLINK' });
});
