import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventJson } from '../../src/cli/event-json.js';
import type { ContainerEvent, LifecycleType } from '../../src/events.js';
import type { HostView } from '../../src/host/proc.js';
import type { Session } from '../../src/watcher/containers.js';
import { containerEvent } from '../../src/watcher/report.js';
import { FIXTURE_DIR, type Fixture } from '../replay/fixture.js';

/** What JSON.stringify escapes and what it leaves alone, in one place each. */
const ODD = [
  '',
  'plain',
  'quote " and backslash \\',
  'controls \u0000\u0001\b\t\n\f\r\u001f',
  'DEL \u007f, U+2028 \u2028 and U+2029 \u2029',
  'lone high \ud800, lone low \udfff, low then high \udc00\ud800',
  'a pair 😀 (\ud83d\ude00), CJK 容器, combining é',
  '\u001b[31mescape sequence\u001b[0m',
  '</script><!-- --> & \'single\'',
];

function session(s: string, n: number): Session {
  return {
    id: s,
    runtime: { name: 'runc', path: s, pid: 4242 + n, argv: ['/usr/sbin/runc', s, ...ODD] },
    bundle: n % 2 ? null : s,
    initPid: n % 3 ? 77 : null,
    initVpid: 7,
    mntns: n % 3 ? 4026532000 : null,
    cgroupId: n % 3 ? '123456789012345678' : null,
    runtimeMntns: n % 4 ? 4026531840 : null,
    meta: {
      manager: 'containerd',
      pod: n % 2 ? null : { name: s, namespace: `ns-${s}`, uid: n % 3 ? null : s },
      container: { name: s, type: n % 2 ? 'sandbox' : null, image: n % 3 ? null : s },
      sandboxId: n % 2 ? s : null,
      containerdNamespace: n % 2 ? 'k8s.io' : null,
      podLabels: n % 2 ? null : { [s]: s, app: 'x', '': '' },
      restartCount: n % 2 ? n : null,
    },
  } as unknown as Session;
}

const view = (inInitPidns: boolean) => ({ inInitPidns }) as unknown as HostView;

/** Every type as the watcher builds it (src/watcher/{enrich,lifecycle,existing}.ts add the rest). */
function built(type: LifecycleType, s: string, n: number, includeSpec: boolean): ContainerEvent {
  const e = containerEvent(type, session(s, n), BigInt(n) * 1_000_000_007n, view(n % 2 === 0));
  if (type === 'precreate') {
    e.specError = n % 2 ? null : { code: 'ERR_SPEC_READ', message: s };
    e.held = n % 2 === 0;
    e.heldBy = n % 3 ? 'watcher' : n % 2 ? 'watchdog' : null;
    const spec = { ociVersion: '1.0.2', annotations: { [s]: s }, process: { args: [s], env: [`SECRET=${s}`] } };
    Object.defineProperty(e, 'spec', { value: spec, enumerable: includeSpec });
  }
  if (type === 'exit') [e.exitCode, e.signal] = n % 2 ? [137, 9] : [n % 3 ? 0 : null, null];
  if (type === 'failed' || type === 'denied') e.reason = s;
  if (type === 'existing') e.started = n % 2 === 0;
  return e;
}

const TYPES: LifecycleType[] = ['precreate', 'create', 'start', 'exit', 'denied', 'failed', 'existing'];

describe('watch --json event lines', () => {
  it('equal JSON.stringify for every event the replay fixtures recorded', () => {
    const files = readdirSync(FIXTURE_DIR).filter((f) => f.endsWith('.json'));
    let events = 0;
    for (const f of files) {
      const fixture = JSON.parse(readFileSync(join(FIXTURE_DIR, f), 'utf8')) as Fixture;
      for (const { on, payload } of fixture.emitted) {
        if (on !== 'event') continue;
        events++;
        expect(eventJson(payload as unknown as ContainerEvent), `${f}: ${payload.type} ${payload.id}`).toBe(JSON.stringify(payload));
      }
    }
    expect(files.length).toBeGreaterThan(5);
    expect(events).toBeGreaterThan(50);
  });

  it('write every field of ContainerEvent: one added to the type fails to compile here, one not written fails here', () => {
    const every: Record<keyof ContainerEvent, true> = {
      type: true, time: true, monotonicNs: true, id: true, manager: true, runtime: true, bundle: true, pid: true,
      watcherPid: true, mntns: true, cgroupId: true, nodeMntns: true, pod: true, container: true, sandboxId: true,
      containerdNamespace: true, podLabels: true, restartCount: true, exitCode: true, signal: true, specError: true,
      reason: true, started: true, held: true, heldBy: true, spec: true,
    };
    const e = Object.assign(built('precreate', 'x', 0, true), { exitCode: 0, signal: null, reason: 'r', started: true });
    expect(Object.keys(JSON.parse(eventJson(e))).sort()).toEqual(Object.keys(every).sort());
  });

  it('equal JSON.stringify for every type as the watcher builds it, odd strings in every string field', () => {
    for (const includeSpec of [false, true])
      for (const type of TYPES)
        ODD.forEach((s, n) => {
          const e = built(type, s, n, includeSpec);
          const line = eventJson(e);
          expect(line, `${type} ${JSON.stringify(s)}`).toBe(JSON.stringify(e));
          expect(JSON.parse(line)).toEqual(JSON.parse(JSON.stringify(e)));
        });
  });

  it('leaves the spec out unless it is enumerable (--include-spec): the env holds secrets', () => {
    expect(eventJson(built('precreate', 'x', 0, false))).not.toContain('SECRET');
    expect(eventJson(built('precreate', 'x', 0, true))).toContain('"spec":{"ociVersion"');
  });

  it('escapes what would break a line: a newline in any string stays inside its line', () => {
    const line = eventJson(built('failed', 'a\nb\r\u2028c', 0, false));
    expect(line.split('\n')).toHaveLength(1);
    expect((JSON.parse(line) as ContainerEvent).reason).toBe('a\nb\r\u2028c');
  });
});
