// The kernel mechanisms ocinotify relies on: since which Linux, and what a kernel without one
// gets. `doctor` tries each on the running kernel (the addon's probeKernel, by these names);
// README's "Modes and kernel requirements" table says the same (a unit test compares them).

export interface Mechanism {
  /** as the addon's probe names it */
  name: string;
  /** the first Linux release that has it */
  since: string;
  /** what it is used for */
  for: string;
  /** what happens on a kernel without it */
  without: string;
}

const NO_BPF = 'the BPF programs do not load: mode `fanotify-only`, or `ERR_NO_MECHANISM` without fanotify too';
const NO_FANOTIFY = 'nothing is held: mode `ebpf-only`, or `ERR_NO_MECHANISM` without eBPF too';

export const MECHANISMS: readonly Mechanism[] = [
  {
    name: 'fanotify',
    since: '4.20',
    for: 'the permission group (`FAN_CLASS_CONTENT`, `CONFIG_FANOTIFY_ACCESS_PERMISSIONS`; `FAN_REPORT_TID`, 4.20)',
    without: NO_FANOTIFY,
  },
  {
    name: 'FAN_OPEN_EXEC_PERM',
    since: '5.0',
    for: "holding a runtime binary's exec",
    without: `no binary can be marked, each \`runtime\` event says \`not held: fanotify_mark: Invalid argument\`; ${NO_FANOTIFY}`,
  },
  {
    name: 'pidfd_open',
    since: '5.3',
    for: 'exits without the BPF side (mode `fanotify-only`)',
    without: 'mode `fanotify-only` cannot run (`pidfd_open: Function not implemented`): `ERR_NO_MECHANISM` when eBPF is missing too',
  },
  {
    name: 'openat2',
    since: '5.6',
    for: "reading a bundle's config.json inside the caller's root (`RESOLVE_IN_ROOT`)",
    without: '`precreate` with `specError` `ERR_SPEC_READ`: no annotations, no pod',
  },
  {
    name: 'inotify fdinfo',
    since: '3.8',
    for: "a runtime binary's kernel inode key (`ino:` `sdev:` of a watch, `CONFIG_PROC_FS`), which differs from stat(2)'s on overlayfs over several filesystems and on btrfs",
    without:
      'binaries keyed by stat(2): on those filesystems the BPF side misses their execs (no `create`, `start`, `exit`), and each `runtime` event says `kernel inode key unknown`',
  },
  {
    name: 'BPF',
    since: '4.7',
    for: 'BPF programs on tracepoints (`CONFIG_BPF_SYSCALL`; CAP_BPF and CAP_PERFMON, 5.8, or CAP_SYS_ADMIN)',
    without: NO_BPF,
  },
  { name: 'BTF', since: '5.4', for: 'CO-RE: `/sys/kernel/btf/vmlinux` (`CONFIG_DEBUG_INFO_BTF`)', without: NO_BPF },
  {
    name: 'syscall tracepoints',
    since: '4.7',
    for: '`syscalls/sys_enter_execve(at)` (`CONFIG_FTRACE_SYSCALLS`; tracefs, which the addon mounts for the attach when it is not)',
    without: NO_BPF,
  },
  { name: 'tp_btf', since: '5.5', for: '`sched_process_fork` as a BTF tracepoint (`BPF_PROG_TYPE_TRACING`)', without: NO_BPF },
  { name: 'BPF ring buffer', since: '5.8', for: 'records to the reactor (`BPF_MAP_TYPE_RINGBUF`)', without: NO_BPF },
  { name: 'bpf_get_current_task_btf', since: '5.11', for: 'the current task as a BTF pointer', without: NO_BPF },
  { name: 'bpf_loop', since: '5.17', for: 'copying argv (up to 512 arguments)', without: NO_BPF },
];
