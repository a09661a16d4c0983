// The documented event schema (README "Event schema"), as checks that return what is wrong.
// Used by the property tests on parser output and by integration tests on every event they see.
import { DIAGNOSTIC_CODES, isValidContainerId } from '../src/index.js';
import { ARG_CHARS, ARGV_HEAD, ARGV_TAIL } from '../src/diagnostics.js';

const MANAGERS = ['containerd', 'cri-o', 'podman', 'docker', 'unknown'];
const CONTAINER_TYPES = ['sandbox', 'container', 'init', 'ephemeral'];
const LIFECYCLE = ['precreate', 'create', 'start', 'exit', 'denied', 'failed', 'existing'];
const RUNTIMES = ['runc', 'crun', 'youki', 'runsc', 'conmon'];
const DECIMAL = /^(0|[1-9][0-9]*)$/;
/** clip() adds three dots */
const CLIPPED = ARG_CHARS + 3;

type Problems = string[];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringOrNull = (v: unknown): boolean => typeof v === 'string' || v === null;
const isIntOrNull = (v: unknown): boolean => v === null || (typeof v === 'number' && Number.isInteger(v) && v >= 0);

function check(problems: Problems, ok: boolean, what: string): void {
  if (!ok) problems.push(what);
}

/** The metadata part every lifecycle event has: what the resolver produces. */
export function metadataProblems(e: Record<string, unknown>): Problems {
  const p: Problems = [];
  check(p, MANAGERS.includes(e.manager as string), `manager ${String(e.manager)}`);
  const pod = e.pod;
  check(
    p,
    pod === null ||
      (isObject(pod) &&
        typeof pod.name === 'string' &&
        pod.name !== '' &&
        typeof pod.namespace === 'string' &&
        pod.namespace !== '' &&
        isStringOrNull(pod.uid)),
    `pod ${JSON.stringify(pod)}`,
  );
  const c = e.container;
  check(
    p,
    isObject(c) &&
      isStringOrNull(c.name) &&
      isStringOrNull(c.image) &&
      (c.type === null || CONTAINER_TYPES.includes(c.type as string)),
    `container ${JSON.stringify(c)}`,
  );
  check(p, isStringOrNull(e.sandboxId), 'sandboxId');
  if ('containerdNamespace' in e) check(p, isStringOrNull(e.containerdNamespace), 'containerdNamespace');
  return p;
}

export function containerEventProblems(value: unknown): Problems {
  if (!isObject(value)) return ['not an object'];
  const e = value;
  const p: Problems = [];
  check(p, LIFECYCLE.includes(e.type as string), `type ${String(e.type)}`);
  check(p, typeof e.time === 'string' && !Number.isNaN(Date.parse(e.time)), 'time');
  check(p, typeof e.monotonicNs === 'string' && DECIMAL.test(e.monotonicNs), 'monotonicNs');
  check(p, typeof e.id === 'string' && isValidContainerId(e.id), `id ${JSON.stringify(e.id)}`);
  const r = e.runtime;
  check(
    p,
    isObject(r) &&
      RUNTIMES.includes(r.name as string) &&
      typeof r.path === 'string' &&
      typeof r.pid === 'number' &&
      Array.isArray(r.argv) &&
      r.argv.every((a) => typeof a === 'string'),
    'runtime',
  );
  check(p, isStringOrNull(e.bundle) && (e.bundle === null || (e.bundle as string).startsWith('/')), 'bundle');
  check(p, isIntOrNull(e.pid) && isIntOrNull(e.mntns) && isIntOrNull(e.nodeMntns), 'pid/mntns/nodeMntns');
  check(p, e.cgroupId === null || (typeof e.cgroupId === 'string' && DECIMAL.test(e.cgroupId)), 'cgroupId');
  p.push(...metadataProblems(e));
  if (e.type === 'exit') check(p, isIntOrNull(e.exitCode) && isIntOrNull(e.signal), 'exitCode/signal');
  if (e.type === 'precreate') {
    check(p, typeof e.held === 'boolean', 'held');
    const se = e.specError;
    check(
      p,
      se === null || (isObject(se) && DIAGNOSTIC_CODES.includes(se.code as never) && typeof se.message === 'string'),
      `specError ${JSON.stringify(se)}`,
    );
  }
  return p;
}

export function diagnosticProblems(value: unknown): Problems {
  if (!isObject(value)) return ['not an object'];
  const d = value;
  const p: Problems = [];
  check(p, d.type === 'diagnostic', 'type');
  check(p, typeof d.time === 'string' && !Number.isNaN(Date.parse(d.time)), 'time');
  check(p, typeof d.monotonicNs === 'string' && DECIMAL.test(d.monotonicNs), 'monotonicNs');
  check(p, DIAGNOSTIC_CODES.includes(d.code as never), `code ${String(d.code)}`);
  check(p, d.impact === 'ignored' || d.impact === 'degraded', 'impact');
  check(p, typeof d.message === 'string' && d.message.length <= 515, 'message');
  check(p, d.id === null || (typeof d.id === 'string' && isValidContainerId(d.id)), 'id');
  check(p, isStringOrNull(d.bundle), 'bundle');
  const r = d.runtime;
  check(
    p,
    (r === null && String(d.code).startsWith('ERR_WATCHDOG_')) ||
    (isObject(r) &&
      (r.name === null || RUNTIMES.includes(r.name as string)) &&
      typeof r.path === 'string' &&
      (r.path as string).length <= CLIPPED &&
      typeof r.pid === 'number' &&
      r.euid === 0 &&
      typeof r.argc === 'number' &&
      Array.isArray(r.argv) &&
      r.argv.length <= ARGV_HEAD + ARGV_TAIL &&
      r.argv.every((a) => typeof a === 'string' && a.length <= CLIPPED) &&
      r.argc === r.argv.length + (r.argvOmitted as number) &&
      typeof r.argvClipped === 'boolean'),
    `runtime ${JSON.stringify(r).slice(0, 300)}`,
  );
  const details = d.details;
  check(
    p,
    isObject(details) &&
      Object.values(details).every(
        (v) =>
          v === null ||
          typeof v === 'number' ||
          typeof v === 'boolean' ||
          (typeof v === 'string' && v.length <= CLIPPED) ||
          (Array.isArray(v) && v.length <= 16 && v.every((x) => typeof x === 'string' && x.length <= CLIPPED)),
      ),
    'details',
  );
  return p;
}

export function lostProblems(value: unknown): Problems {
  if (!isObject(value)) return ['not an object'];
  const p: Problems = [];
  check(p, value.type === 'lost', 'type');
  check(p, typeof value.count === 'number' && Number.isInteger(value.count) && value.count > 0, 'count');
  check(p, typeof value.reason === 'string' && value.reason !== '', 'reason');
  return p;
}
