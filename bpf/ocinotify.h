/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The records the kernel side hands to the native reactor. Included by both
 * bpf/ocinotify.bpf.c and addon/, so the layout has exactly one definition.
 */
#ifndef OCINOTIFY_H
#define OCINOTIFY_H

/* argv is copied one argument at a time into a buffer twice this size, so
 * the verifier can prove that every copy of at most OCI_ARG_CHUNK bytes that
 * starts below OCI_ARG_CHUNK stays inside the buffer. */
#define OCI_ARG_CHUNK 4096
#define OCI_ARGS_BYTES (2 * OCI_ARG_CHUNK)
#define OCI_MAX_ARGS 512
#define OCI_FILENAME_LEN 256
#define OCI_NAME_LEN 16

enum oci_record_type {
	/* sys_enter_execve(at) of a path or fd that looks like a runtime:
	 * argv read from the caller's memory, before the permission check. */
	OCI_REC_RUNTIME_ENTER = 1,
	/* sched_process_exec of a runtime binary (verified by inode): argv
	 * read from the new image, before its first instruction. */
	OCI_REC_RUNTIME_EXEC = 2,
	/* first exec of a runtime's descendant in another mount namespace:
	 * the container's entrypoint. */
	OCI_REC_INIT_EXEC = 3,
	OCI_REC_EXIT = 4,
	/* an exec that sys_enter matched failed (E2BIG, ENOENT, denied, killed
	 * while held): a held runtime that never ran */
	OCI_REC_EXEC_FAILED = 5,
};

enum oci_exit_kind {
	OCI_EXIT_RUNTIME = 1,   /* a runtime process (create, start, ...) */
	OCI_EXIT_CONTAINER = 2, /* a container init that had exec'd its entrypoint */
	OCI_EXIT_PRESTART = 3,  /* a runtime descendant in another mntns that never exec'd */
};

enum oci_binary_kind {
	OCI_BIN_RUNTIME = 1, /* runc, crun, youki, runsc: each exec is a session */
	OCI_BIN_MONITOR = 2, /* conmon: its argv names the container, it spawns the runtime */
};

enum oci_record_flags {
	/* args is not all of argv: longer than copied, or a page of it could not be read */
	OCI_F_ARGS_TRUNCATED = 1 << 0,
	OCI_F_EXECVEAT = 1 << 1,
	OCI_F_MONITOR = 1 << 2,
	/* RUNTIME_EXEC of a file whose inode is not a known runtime's but whose
	 * name is: a runtime at a path or in a mount namespace nobody named */
	OCI_F_BY_NAME = 1 << 3,
};

enum oci_stat {
	OCI_STAT_RINGBUF_FULL = 0, /* records dropped because the ring buffer was full */
	OCI_STAT_ENTER_MATCHED,
	OCI_STAT_MAX,
};

struct oci_inode_key {
	__u64 dev; /* kernel encoding: (major << 20) | minor */
	__u64 ino;
};

/* Identity of the task a record is about. pid/tid are as the initial pid
 * namespace sees them; vpid/vtid as the watcher's pid namespace sees them
 * (0 when the task is not visible there, e.g. watcher in a pod). */
struct oci_task {
	__u64 ts_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 cgroup_id;
	__u32 mntns;
	__u32 pid;
	__u32 tid;
	__u32 vpid;
	__u32 vtid;
	__u32 ppid;
	__u32 euid; /* effective uid in the initial user namespace */
	/* inode of the task's pid namespace: the pids a nested node's runtime
	 * writes (pid files, state) are in it */
	__u32 pidns;
};

struct oci_header {
	__u32 type;
	__u32 flags;
	struct oci_task task;
};

struct oci_runtime_rec {
	struct oci_header hdr;
	struct oci_inode_key inode; /* RUNTIME_EXEC only */
	__u32 argc;
	__u32 args_len; /* bytes used in args: NUL-terminated strings back to back */
	char filename[OCI_FILENAME_LEN];
	char args[OCI_ARGS_BYTES];
};

struct oci_init_rec {
	struct oci_header hdr;
	__u32 session_pid; /* the runtime process whose descendant this is */
	__u32 runtime_mntns;
	char filename[OCI_FILENAME_LEN];
};

struct oci_exit_rec {
	struct oci_header hdr;
	__u32 kind;
	__u32 session_pid;
	__s32 status; /* wait(2) status: exit code << 8 | terminating signal */
	__u32 _pad;
};

struct oci_exec_failed_rec {
	struct oci_header hdr;
	__s32 err; /* the errno execve(2) returned */
	__u32 _pad;
};

/* sessions/lineage/containers map value */
struct oci_lineage {
	__u32 session_pid;
	__u32 runtime_mntns;
	/* the session's runtime binary (i_ino): a descendant exec'ing another
	 * runtime in another mount namespace is a nested node's runtime, not a
	 * re-exec. 0 for a container a scan found. */
	__u64 runtime_ino;
};

#endif
