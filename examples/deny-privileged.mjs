// Admission policy: deny privileged containers outside the namespaces allowed to run them.
//
//   node examples/deny-privileged.mjs --allow kube-system,monitoring [--unlabelled allow]
//
// Every `runc create` on the node is held while the policy reads the bundle's spec; a denied
// creation fails with EPERM before the container exists, and the kubelet reports the error.
// Privileged here means what the spec grants, whatever the pod spec claimed:
//   - CAP_SYS_ADMIN (or every capability) in spec.process.capabilities.bounding;
//   - a host namespace: no pid, network or ipc entry in spec.linux.namespaces (the container
//     shares the runtime's, i.e. the host's - hostPID, hostNetwork, hostIPC).
// A spec that could not be read counts as privileged: the policy cannot tell.
// Containers without pod metadata (docker, podman, plain runc on the node) have no namespace:
// denied when privileged, unless --unlabelled allow.
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { ContainerWatcher } from 'ocinotify';

const HOST_NAMESPACES = ['pid', 'network', 'ipc'];
/** Linux 5.9+ knows 41 capabilities (CAP_CHECKPOINT_RESTORE = 40); a full set is "all". */
const ALL_CAPABILITIES = 41;

/** Why the spec is privileged, or null when it is not. */
export function privilegeOf(spec) {
  if (!spec) return 'spec unreadable';
  const bounding = spec.process?.capabilities?.bounding ?? [];
  if (bounding.length >= ALL_CAPABILITIES) return 'all capabilities';
  if (bounding.includes('CAP_SYS_ADMIN')) return 'CAP_SYS_ADMIN';
  const own = new Set((spec.linux?.namespaces ?? []).map((ns) => ns.type));
  const shared = HOST_NAMESPACES.filter((type) => !own.has(type));
  if (shared.length > 0) return `host ${shared.join(', ')} namespace${shared.length > 1 ? 's' : ''}`;
  return null;
}

/** The gate: allow anything in allowedNamespaces, deny a privileged spec elsewhere. */
export function denyPrivileged({ allowedNamespaces, allowUnlabelled = false }) {
  const allowed = new Set(allowedNamespaces);
  return (event) => {
    const namespace = event.pod?.namespace ?? null;
    if (namespace === null ? allowUnlabelled : allowed.has(namespace)) return 'allow';
    const why = privilegeOf(event.spec);
    if (why === null) return 'allow';
    const where = namespace === null ? 'a container without pod metadata' : `namespace ${namespace}`;
    return { verdict: 'deny', reason: `privileged (${why}) in ${where}` };
  };
}

async function main() {
  const { values } = parseArgs({
    options: {
      allow: { type: 'string', default: 'kube-system' },
      unlabelled: { type: 'string', default: 'deny' },
      'host-root': { type: 'string', default: '/' },
      // Budget of a held creation; what it answers when exceeded: fail closed, this is a policy.
      'gate-timeout': { type: 'string', default: '1000' },
    },
  });
  const allowedNamespaces = values.allow.split(',').filter(Boolean);
  const watcher = new ContainerWatcher({
    hostRoot: values['host-root'],
    gateTimeoutMs: Number(values['gate-timeout']),
    onTimeout: 'fail-closed',
    gate: denyPrivileged({ allowedNamespaces, allowUnlabelled: values.unlabelled === 'allow' }),
  });
  const stop = () => watcher.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  console.error(`deny-privileged: ${watcher.mode} mode; privileged containers allowed in: ${allowedNamespaces.join(', ') || 'nowhere'}`);
  for await (const e of watcher) {
    if (e.type === 'denied') console.log(JSON.stringify({ verdict: 'deny', id: e.id, pod: e.pod, reason: e.reason }));
    else if (e.type === 'create') console.log(JSON.stringify({ verdict: 'allow', id: e.id, pod: e.pod }));
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
