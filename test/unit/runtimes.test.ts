// The one table of where runtimes live, and the candidates the watcher marks and watches.
import { describe, expect, it } from 'vitest';
import { KNOWN_RUNTIME_PATHS, runtimeCandidates } from '../../src/host/runtimes.js';

describe('runtimeCandidates', () => {
  it('covers the node distributions that ship their own runtime', () => {
    const all = Object.values(KNOWN_RUNTIME_PATHS).flat();
    for (const path of [
      '/var/lib/rancher/k3s/data/current/bin/runc', // k3s
      '/var/lib/rancher/rke2/bin/runc', // RKE2
      '/var/lib/k0s/bin/runc', // k0s
      '/snap/microk8s/current/bin/runc', // microk8s
      '/x86_64-bottlerocket-linux-gnu/sys-root/usr/bin/runc', // Bottlerocket
      '/usr/libexec/crio/runc', // CRI-O's packages
      '/usr/libexec/crio/crun',
      '/usr/libexec/crio/conmon',
    ])
      expect(all).toContain(path);
    expect(new Set(all).size).toBe(all.length);
  });

  it('puts every path under the host root, the user\'s last, each with its runtime and kind', () => {
    const candidates = runtimeCandidates({ hostRoot: '/host', extraPaths: ['/opt/bin/youki', '/opt/bin/my-runtime'] });
    expect(candidates).toContainEqual({ runtime: 'runc', path: '/host/usr/libexec/crio/runc', kind: 'runtime' });
    expect(candidates).toContainEqual({ runtime: 'conmon', path: '/host/usr/bin/conmon', kind: 'monitor' });
    expect(candidates.slice(-2)).toEqual([
      { runtime: 'youki', path: '/host/opt/bin/youki', kind: 'runtime' },
      { runtime: 'runc', path: '/host/opt/bin/my-runtime', kind: 'runtime' },
    ]);
    expect(candidates.every((c) => c.path.startsWith('/host/'))).toBe(true);
  });
});
