// podman as BRIEF section 5 runs it, with everything under one directory: containers.conf
// (the cgroupfs manager, the file events logger, the host network namespace, explicit ulimits),
// vfs storage, its own runroot and tmpdir.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execRuntime } from './exec.js';

export class PrivatePodman {
  /** containers/storage's graph root */
  readonly storage: string;
  private readonly runroot: string;
  private readonly tmp: string;

  /** engine: containers.conf [engine] lines beyond the ones every lab has (the runtime, the init). */
  constructor(readonly dir: string, engine: readonly string[], private readonly log = join(dir, 'podman.log')) {
    this.storage = join(dir, 'storage');
    this.runroot = join(dir, 'run');
    this.tmp = join(dir, 'tmp');
    writeFileSync(
      join(dir, 'containers.conf'),
      [
        '[containers]',
        'netns = "host"',
        'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        `events_logfile_path = "${join(dir, 'events.log')}"`,
        ...engine,
        `tmp_dir = "${this.tmp}"`,
        `static_dir = "${join(this.storage, 'libpod')}"`,
        `volume_path = "${join(this.storage, 'volumes')}"`,
        '[network]',
        `network_config_dir = "${join(dir, 'networks')}"`,
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'storage.conf'),
      ['[storage]', 'driver = "vfs"', `graphroot = "${this.storage}"`, `runroot = "${this.runroot}"`, ''].join('\n'),
    );
  }

  /** podman with this configuration; through /bin/sh (see execRuntime), its stderr in the log. */
  podman(args: string[]): Promise<string> {
    const conf = [`CONTAINERS_CONF=${join(this.dir, 'containers.conf')}`, `CONTAINERS_STORAGE_CONF=${join(this.dir, 'storage.conf')}`];
    const own = ['--root', this.storage, '--runroot', this.runroot, '--tmpdir', this.tmp];
    return execRuntime('/usr/bin/env', [...conf, '/usr/bin/podman', ...own, ...args], this.log);
  }
}
