// argv the real runtimes exec'd on this machine while the integration tests ran (paths
// shortened): the creations must parse, the runtimes' own re-execs must not be containers.
import { describe, expect, it } from 'vitest';
import { parseRuntimeArgv } from '../../src/argv.js';

const ID = '153c9643dc00ba044dcd8ce6a9848302e080131b285eb44f3fb1d78339867a7e';
const BUNDLE = `/var/lib/containers/storage/overlay-containers/${ID}/userdata`;

describe('runtime argv captured from real runs', () => {
  it("youki exec'd by conmon as CRI-O runs it: --runtime-arg values before the verb", () => {
    const argv = ['/usr/bin/youki', '--root=/run/youki', 'create', '--bundle', BUNDLE, '--pid-file', `${BUNDLE}/pidfile`, ID];
    expect(parseRuntimeArgv(argv, 'youki')).toMatchObject({
      verb: 'create',
      id: ID,
      bundle: BUNDLE,
      pidFile: `${BUNDLE}/pidfile`,
      root: '/run/youki',
      isContainerCreation: true,
    });
  });

  it('conmon as CRI-O execs it names the runtime, container id and kubelet name', () => {
    const argv = [
      '/usr/bin/conmon', '-b', BUNDLE, '-c', ID, '--exit-dir', '/var/run/crio/exits', '-l', '/var/log/pods/x/0.log',
      '--log-level', 'error', '-n', 'k8s_sensor-0_edge_iot_c0ffee00_0', '-P', '/run/c/conmon.pid', '-p', `${BUNDLE}/pidfile`,
      '--persist-dir', '/var/lib/c', '-r', '/usr/libexec/crio/runc', '--runtime-arg', '--root=/run/runc',
      '--socket-dir-path', '/var/run/crio', '-u', ID,
    ];
    expect(parseRuntimeArgv(argv, 'conmon')).toMatchObject({
      id: ID,
      name: 'k8s_sensor-0_edge_iot_c0ffee00_0',
      bundle: BUNDLE,
      runtimePath: '/usr/libexec/crio/runc',
      runtimeArgs: ['--root=/run/runc'],
      isContainerCreation: false,
    });
  });

  it("crun's re-exec of its sealed copy repeats the creation's argv (one session, not two)", () => {
    const argv = ['crun', '--root', '/run/crun', 'create', '--bundle', '/b', '--pid-file', '/p', 'c1'];
    expect(parseRuntimeArgv(argv, 'crun')).toMatchObject({ verb: 'create', id: 'c1', isContainerCreation: true });
  });

  it.each([
    [
      'gofer',
      ['runsc-gofer', '--root=/run/runsc', '--network=none', 'gofer', '--bundle', '/b', '--spec-fd=3', '--mounts-fd=4',
        '--io-fds=5', '--apply-caps=false', '--setup-root=false', '--sync-userns-fd=-1'],
    ],
    [
      'boot',
      ['runsc-sandbox', '--root=/run/runsc', '--network=none', 'boot', '--proc-mount-sync-fd=18', '--bundle=/b',
        '--cpu-num', '2', '--total-memory', '25276514304', '--io-fds=3', '--overlay-filestore-fd=-1', '--mounts-fd=4',
        '--start-sync-fd=5', '--controller-fd=6', '--spec-fd=7', '--stdio-fds=8', '--stdio-fds=9', '--stdio-fds=10', 'r1'],
    ],
  ])("runsc's %s re-exec is the runtime's own, not a container", (verb, argv) => {
    expect(parseRuntimeArgv(argv, 'runsc')).toMatchObject({ verb, selfReexec: true, isContainerCreation: false, id: null });
  });

  it('runsc create and start as the tests exec them', () => {
    expect(
      parseRuntimeArgv(['/usr/bin/runsc', '--root', '/r', '--network=none', 'create', '--bundle', '/b', '--pid-file', '/p', 'rs-0'], 'runsc'),
    ).toMatchObject({ verb: 'create', id: 'rs-0', bundle: '/b', pidFile: '/p', root: '/r', isContainerCreation: true });
    expect(parseRuntimeArgv(['/usr/bin/runsc', '--root', '/r', '--network=none', 'start', 'rs-0'], 'runsc')).toMatchObject({
      verb: 'start',
      id: 'rs-0',
      root: '/r',
    });
  });
});
