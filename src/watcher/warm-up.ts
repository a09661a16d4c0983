// The steps every `precreate` takes in JavaScript (argv, spec, metadata), run at start on a
// made-up CRI creation, a few rounds each turn of the event loop: V8 compiles them before the
// first container instead of during the first thousand. Only pure functions: nothing is read,
// held, answered or emitted.
import { resolveAnnotations, type ResolvedMetadata } from '../annotations/index.js';
import { parseRuntimeArgv } from '../argv.js';
import { parseSpec, specAnnotations } from '../spec.js';

/** ~1 ms a turn on a busy 2-core machine: a creation meanwhile waits for one turn at most. */
const ROUNDS_PER_TURN = 10;
export const WARM_UP_TURNS = 100;

const ID = 'f'.repeat(64);
const BUNDLE = `/run/containerd/io.containerd.runtime.v2.task/k8s.io/${ID}`;
const ARGV = ['runc', '--root', '/run/containerd/runc/k8s.io', '--log', `${BUNDLE}/log.json`, '--log-format', 'json', 'create', '--bundle', BUNDLE, '--pid-file', `${BUNDLE}/init.pid`, ID];
const SPEC = Buffer.from(
  JSON.stringify({
    ociVersion: '1.1.0',
    process: { user: { uid: 0, gid: 0 }, args: ['/pause'], env: ['PATH=/bin'], cwd: '/', capabilities: { bounding: ['CAP_KILL'] } },
    root: { path: 'rootfs', readonly: true },
    mounts: [{ destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec'] }],
    annotations: {
      'io.kubernetes.cri.container-type': 'container',
      'io.kubernetes.cri.container-name': 'warm-up',
      'io.kubernetes.cri.sandbox-id': ID,
      'io.kubernetes.cri.sandbox-name': 'warm-up',
      'io.kubernetes.cri.sandbox-namespace': 'warm-up',
      'io.kubernetes.cri.sandbox-uid': 'warm-up',
    },
    linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }], cgroupsPath: 'warm-up' },
  }),
);

/** One made-up creation's argv, spec and metadata. */
export function warmUpRound(): ResolvedMetadata {
  const invocation = parseRuntimeArgv(ARGV, 'runc');
  const { annotations } = specAnnotations(parseSpec(SPEC, `${BUNDLE}/config.json`));
  return resolveAnnotations(annotations, { bundle: invocation.bundle, id: invocation.id, conmonName: null });
}

/** Runs the rounds, one turn at a time, until done or stopped. */
export function warmUp(stopped: AbortSignal, turns = WARM_UP_TURNS): void {
  if (stopped.aborted || turns === 0) return;
  for (let i = 0; i < ROUNDS_PER_TURN; i++) warmUpRound();
  setImmediate(() => warmUp(stopped, turns - 1));
}
