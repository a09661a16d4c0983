// `watch --json`'s event line, written by hand for the event's known shape: the same text as
// JSON.stringify (test/unit/event-json.test.ts holds it to that), without walking the object's
// properties generically. Key order is the order src/watcher/report.ts builds them in.
import type { ContainerEvent, RuntimeRef } from '../events.js';

/** Characters JSON.stringify escapes: controls, `"`, `\` and unpaired surrogates. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function str(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

function strOrNull(s: string | null): string {
  return s === null ? 'null' : str(s);
}

function num(n: number | null): string {
  return n === null ? 'null' : Number.isFinite(n) ? `${n}` : 'null';
}

function runtime(r: RuntimeRef): string {
  let argv = '';
  for (let i = 0; i < r.argv.length; i++) argv += i === 0 ? str(r.argv[i]!) : `,${str(r.argv[i]!)}`;
  return `{"name":${str(r.name)},"path":${str(r.path)},"pid":${num(r.pid)},"argv":[${argv}]}`;
}

/** The fields only some types carry, in the order they are added after the common ones. */
function tail(e: ContainerEvent): string {
  let out = '';
  if (e.specError !== undefined)
    out += `,"specError":${e.specError === null ? 'null' : `{"code":${str(e.specError.code)},"message":${str(e.specError.message)}}`}`;
  if (e.held !== undefined) out += `,"held":${e.held}`;
  if (e.heldBy !== undefined) out += `,"heldBy":${strOrNull(e.heldBy)}`;
  // Non-enumerable unless --include-spec: the env holds secrets.
  if (e.spec !== undefined && Object.prototype.propertyIsEnumerable.call(e, 'spec')) out += `,"spec":${JSON.stringify(e.spec)}`;
  if (e.exitCode !== undefined) out += `,"exitCode":${num(e.exitCode)}`;
  if (e.signal !== undefined) out += `,"signal":${num(e.signal)}`;
  if (e.reason !== undefined) out += `,"reason":${str(e.reason)}`;
  if (e.started !== undefined) out += `,"started":${e.started}`;
  return out;
}

/** JSON.stringify(event), faster. */
export function eventJson(e: ContainerEvent): string {
  const { pod, container: c } = e;
  return (
    `{"type":${str(e.type)},"time":${str(e.time)},"monotonicNs":${str(e.monotonicNs)},"id":${str(e.id)},` +
    `"manager":${str(e.manager)},"runtime":${runtime(e.runtime)},"bundle":${strOrNull(e.bundle)},` +
    `"pid":${num(e.pid)},"watcherPid":${num(e.watcherPid)},"mntns":${num(e.mntns)},"cgroupId":${strOrNull(e.cgroupId)},` +
    `"nodeMntns":${num(e.nodeMntns)},` +
    `"pod":${pod === null ? 'null' : `{"name":${str(pod.name)},"namespace":${str(pod.namespace)},"uid":${strOrNull(pod.uid)}}`},` +
    `"container":{"name":${strOrNull(c.name)},"type":${strOrNull(c.type)},"image":${strOrNull(c.image)}},` +
    `"sandboxId":${strOrNull(e.sandboxId)},"containerdNamespace":${strOrNull(e.containerdNamespace)},` +
    `"podLabels":${e.podLabels === null ? 'null' : JSON.stringify(e.podLabels)},"restartCount":${num(e.restartCount)}` +
    `${tail(e)}}`
  );
}
