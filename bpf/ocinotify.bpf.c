// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Kernel side of ocinotify: stable tracepoints only.
 *
 *  sys_enter_execve(at)  argv of execs that look like a runtime, read before
 *                        fanotify's permission check so a held exec can be
 *                        matched to its argv.
 *  sys_exit_execve(at)   failure of an exec sys_enter matched: a held
 *                        runtime whose exec failed never runs.
 *  sched_process_exec    inode-verified runtime execs (start a session), and
 *                        the entrypoint exec of a session's descendant in a
 *                        new mount namespace (the container's first exec).
 *  sched_process_fork    descendants of a session inherit it (lineage).
 *  sched_process_exit    exit of runtimes, container inits and prestart inits.
 *
 * An exec that is not a runtime costs a filename read and one hash lookup and
 * copies nothing to user space.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ocinotify.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* inode of the watcher's pid namespace, set before load */
const volatile __u32 watcher_pidns = 0;
/* inode of the pid namespace the watcher calls the host's (its host root's /proc: a kind
 * node's own, for a watcher in one of its pods), set before load; 0: the initial one. Pids in
 * records and map keys are the host's; a task that is not on the host (pid 0 there) is none
 * of the watcher's business. */
const volatile __u32 host_pidns = 0;

/* basenames that runtimes are exec'd by (runc, crun, ...): 64 is far more
 * than the runtimes that exist; user paths add their basenames here */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[OCI_NAME_LEN]);
	__type(value, __u32);
} runtime_names SEC(".maps");

/* inodes of the runtime binaries: the identity that cannot be faked by a
 * name; value is enum oci_binary_kind */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct oci_inode_key);
	__type(value, __u32);
} runtime_inodes SEC(".maps");

/* processes currently running a runtime binary, by host tgid -> what their
 * descendants inherit. LRU: a failed exec leaves no exit behind, so entries
 * must be reclaimable. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct oci_lineage);
} sessions SEC(".maps");

/* descendants of a session that have not exec'd yet (runc init stages,
 * hooks), by host tgid. A create makes about three. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct oci_lineage);
} lineage SEC(".maps");

/* container inits that exec'd their entrypoint, until they exit */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct oci_lineage);
} containers SEC(".maps");

/* threads inside an exec that sys_enter matched, by tid, until its
 * sys_exit: there a failure is reported. By thread, as two threads of a
 * process may exec at once. LRU: bounded whatever happens. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u8);
} execs_in_flight SEC(".maps");

/* Runtime records go in at their used length (~0.4 KiB for a typical argv,
 * not the 8.5 KiB of argv room): 1 MiB holds some 2,500, hundreds of
 * containers' worth of backlog. User space maps the ring twice: its size
 * counts twice in the watcher's RSS. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OCI_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* a filename does not fit on the 512-byte BPF stack next to everything else */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[OCI_FILENAME_LEN]);
} scratch SEC(".maps");

/* A runtime record is built here, then only its used part is copied to the
 * ring buffer: bpf_ringbuf_reserve() takes a constant size, the whole 8 KiB
 * of argv room. Tracepoint programs do not nest on a CPU (bpf_prog_active). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct oci_runtime_rec);
} runtime_scratch SEC(".maps");

#define SIGNAL_GROUP_EXIT 0x00000004 /* include/linux/sched/signal.h */
#define AT_EMPTY_PATH 0x1000

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline __u32 mntns_of(struct task_struct *task)
{
	return BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
}

/* the task's id as pid namespace ns sees it, 0 if invisible */
static __always_inline __u32 pid_in(struct pid *pid, __u32 ns)
{
	unsigned int level = BPF_CORE_READ(pid, level);

	for (int i = 0; i < 32; i++) {
		if (i > level)
			break;
		struct upid up;

		if (bpf_core_read(&up, sizeof(up), &pid->numbers[i]))
			break;
		if (BPF_CORE_READ(up.ns, ns.inum) == ns)
			return up.nr;
	}
	return 0;
}

static __always_inline __u32 watcher_view(struct pid *pid)
{
	return pid_in(pid, watcher_pidns);
}

/* the task's process id on the host, 0 when it is not on the host */
static __always_inline __u32 host_tgid(struct task_struct *task)
{
	if (!host_pidns)
		return BPF_CORE_READ(task, tgid);
	return pid_in(BPF_CORE_READ(task, group_leader, thread_pid), host_pidns);
}

/* the pid namespace the task lives in (task_active_pid_ns) */
static __always_inline __u32 own_pidns(struct pid *pid)
{
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid up;

	if (level >= 32 || bpf_core_read(&up, sizeof(up), &pid->numbers[level]))
		return 0;
	return BPF_CORE_READ(up.ns, ns.inum);
}

static __always_inline void fill_task(struct oci_task *t, struct task_struct *task)
{
	t->ts_ns = bpf_ktime_get_ns();
	t->cgroup_id = bpf_get_current_cgroup_id();
	t->mntns = mntns_of(task);
	t->pid = host_tgid(task);
	t->tid = host_pidns ? pid_in(BPF_CORE_READ(task, thread_pid), host_pidns) : BPF_CORE_READ(task, pid);
	t->vpid = watcher_view(BPF_CORE_READ(task, group_leader, thread_pid));
	t->vtid = watcher_view(BPF_CORE_READ(task, thread_pid));
	t->ppid = host_tgid(BPF_CORE_READ(task, real_parent));
	t->euid = BPF_CORE_READ(task, cred, euid.val);
	t->pidns = own_pidns(BPF_CORE_READ(task, thread_pid));
}

static __always_inline int inode_kind(struct file *file)
{
	struct oci_inode_key key = {};
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	__u32 *kind;

	if (!inode)
		return 0;
	key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	key.ino = BPF_CORE_READ(inode, i_ino);
	kind = bpf_map_lookup_elem(&runtime_inodes, &key);
	return kind ? *kind : 0;
}

static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);
	struct file *file = NULL;

	if (fd < 0 || fd >= max)
		return NULL;
	bpf_core_read(&file, sizeof(file), &fds[fd]);
	return file;
}

static __always_inline bool has_prefix(const char *s, const char *prefix, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] != prefix[i])
			return false;
	return true;
}

/* "/dev/fd/N", "/proc/self/fd/N" -> N, else -1 */
static __always_inline long fd_path_number(const char *name)
{
	int start;
	long n = 0;

	if (has_prefix(name, "/dev/fd/", 8))
		start = 8;
	else if (has_prefix(name, "/proc/self/fd/", 14))
		start = 14;
	else
		return -1;
	for (int i = 0; i < 8; i++) {
		char c = name[(start + i) & (OCI_FILENAME_LEN - 1)];

		if (c == 0)
			return i ? n : -1;
		if (c < '0' || c > '9')
			return -1;
		n = n * 10 + (c - '0');
	}
	return -1;
}

/* Where the basename of a path of len bytes starts, or -1 when it is longer
 * than any runtime name could be. Looks at the last OCI_NAME_LEN bytes only:
 * this runs for every exec on the node. */
static __always_inline int short_basename(const char *name, int len)
{
#pragma unroll
	for (int k = 1; k <= OCI_NAME_LEN; k++) {
		int pos = len - k;

		if (pos < 0)
			return 0;
		if (name[pos & (OCI_FILENAME_LEN - 1)] == '/')
			return pos + 1;
	}
	return -1;
}

/* Is this exec one fanotify will hold for a runtime binary? Names decide for
 * ordinary paths; for the paths that name a file by fd or by /proc/self/exe
 * (self re-execs, execveat) the inode decides. */
static __always_inline __u32 enter_kind(struct task_struct *task, const char *name, int len,
					long dfd, long flags)
{
	char key[OCI_NAME_LEN] = {};
	int base;
	__u32 *kind;
	long fd;

	if (name[0] == 0)
		return (flags & AT_EMPTY_PATH) ? inode_kind(fd_file(task, dfd)) : 0;
	if (has_prefix(name, "/proc/self/exe", 15))
		return inode_kind(BPF_CORE_READ(task, mm, exe_file));
	fd = fd_path_number(name);
	if (fd >= 0)
		return inode_kind(fd_file(task, fd));
	base = short_basename(name, len);
	if (base < 0)
		return 0;
	for (int i = 0; i < OCI_NAME_LEN - 1; i++) {
		char c = name[(base + i) & (OCI_FILENAME_LEN - 1)];

		if (c == 0)
			break;
		key[i] = c;
	}
	kind = bpf_map_lookup_elem(&runtime_names, key);
	return kind ? *kind : 0;
}

/* A file no runtime's inode names, exec'd by real root under a runtime's name:
 * a runtime at a path or in a mount namespace (a kind node's) nobody named. It
 * is followed from this exec on like a known one, and user space learns its
 * inode from its first creation (reactor.cc). A longer name is no runtime's. */
static __always_inline __u32 name_kind(struct task_struct *task, struct file *exe)
{
	char key[OCI_NAME_LEN] = {};
	struct dentry *dentry = BPF_CORE_READ(exe, f_path.dentry);
	__u32 *kind;

	if (BPF_CORE_READ(task, cred, euid.val) != 0 || BPF_CORE_READ(dentry, d_name.len) >= OCI_NAME_LEN)
		return 0;
	bpf_probe_read_kernel_str(key, OCI_NAME_LEN, BPF_CORE_READ(dentry, d_name.name));
	kind = bpf_map_lookup_elem(&runtime_names, key);
	return kind ? *kind : 0;
}

struct argv_ctx {
	struct oci_runtime_rec *r;
	const char *const *argv;
	__u32 off;
	__u32 argc;
};

static long copy_arg_cb(__u32 i, struct argv_ctx *c)
{
	const char *arg = NULL;
	struct oci_runtime_rec *r = c->r;
	long n;

	/*
	 * A page of the caller's that is not present (never touched, migrating, swapped out)
	 * cannot be read here, where nothing may fault: what was read is then not all of argv,
	 * and the flag says so (the reactor reads the held exec's memory, JS reads /proc).
	 */
	if (bpf_probe_read_user(&arg, sizeof(arg), &c->argv[i])) {
		r->hdr.flags |= OCI_F_ARGS_TRUNCATED;
		return 1;
	}
	if (!arg)
		return 1;
	if (c->off >= OCI_ARG_CHUNK || i == OCI_MAX_ARGS - 1) {
		r->hdr.flags |= OCI_F_ARGS_TRUNCATED;
		return 1;
	}
	n = bpf_probe_read_user_str(&r->args[c->off & (OCI_ARG_CHUNK - 1)], OCI_ARG_CHUNK, arg);
	if (n <= 0) {
		r->hdr.flags |= OCI_F_ARGS_TRUNCATED;
		return 1;
	}
	if (n == OCI_ARG_CHUNK)
		r->hdr.flags |= OCI_F_ARGS_TRUNCATED;
	c->off += n;
	c->argc++;
	return 0;
}

/* argv of an exec in progress: an array of pointers in the caller's memory */
static __always_inline void copy_argv_array(struct oci_runtime_rec *r, const char *const *argv)
{
	struct argv_ctx c = { .r = r, .argv = argv, .off = 0, .argc = 0 };

	bpf_loop(OCI_MAX_ARGS, copy_arg_cb, &c, 0);
	r->argc = c.argc;
	r->args_len = c.off;
}

struct count_ctx {
	struct oci_runtime_rec *r;
	__u32 len;
	__u32 argc;
};

static long count_nul_cb(__u32 i, struct count_ctx *c)
{
	if (i >= c->len)
		return 1;
	if (c->r->args[i & (OCI_ARGS_BYTES - 1)] == 0)
		c->argc++;
	return 0;
}

/* argv of an exec that succeeded: the flat area of the new image */
static __always_inline void copy_arg_area(struct oci_runtime_rec *r, struct task_struct *task)
{
	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	__u32 len;
	struct count_ctx c = { .r = r, .argc = 0 };

	if (end <= start)
		return;
	len = end - start > OCI_ARGS_BYTES ? OCI_ARGS_BYTES : end - start;
	if (len < end - start)
		r->hdr.flags |= OCI_F_ARGS_TRUNCATED;
	if (bpf_probe_read_user(r->args, len, (void *)start)) {
		r->hdr.flags |= OCI_F_ARGS_TRUNCATED; /* a page not present: JS reads /proc */
		return;
	}
	c.len = len;
	bpf_loop(OCI_ARGS_BYTES, count_nul_cb, &c, 0);
	r->argc = c.argc;
	r->args_len = len;
}

static __always_inline void submit_runtime_rec(struct oci_runtime_rec *r)
{
	__u32 used = r->args_len;

	if (used > OCI_ARGS_BYTES)
		used = OCI_ARGS_BYTES;
	if (bpf_ringbuf_output(&events, r, offsetof(struct oci_runtime_rec, args) + used, 0))
		count(OCI_STAT_RINGBUF_FULL);
}

static __always_inline int on_exec_enter(long dfd, const char *filename,
					 const char *const *argv, long flags, bool at)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct oci_runtime_rec *r;
	__u32 zero = 0, kind;
	long len;
	char *name = bpf_map_lookup_elem(&scratch, &zero);

	if (!name)
		return 0;
	len = bpf_probe_read_user_str(name, OCI_FILENAME_LEN, filename);
	if (len <= 0)
		return 0;
	kind = enter_kind(task, name, len - 1, dfd, flags);
	if (!kind || !host_tgid(task))
		return 0;
	count(OCI_STAT_ENTER_MATCHED);
	{
		__u32 tid = (__u32)bpf_get_current_pid_tgid();
		__u8 one = 1;

		bpf_map_update_elem(&execs_in_flight, &tid, &one, BPF_ANY);
	}
	r = bpf_map_lookup_elem(&runtime_scratch, &zero);
	if (!r)
		return 0;
	r->hdr.type = OCI_REC_RUNTIME_ENTER;
	r->hdr.flags = (at ? OCI_F_EXECVEAT : 0) | (kind == OCI_BIN_MONITOR ? OCI_F_MONITOR : 0);
	fill_task(&r->hdr.task, task);
	r->inode.dev = 0;
	r->inode.ino = 0;
	__builtin_memcpy(r->filename, name, OCI_FILENAME_LEN);
	copy_argv_array(r, argv);
	submit_runtime_rec(r);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	return on_exec_enter(-100 /* AT_FDCWD */, (const char *)ctx->args[0],
			     (const char *const *)ctx->args[1], 0, false);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int enter_execveat(struct trace_event_raw_sys_enter *ctx)
{
	return on_exec_enter(ctx->args[0], (const char *)ctx->args[1],
			     (const char *const *)ctx->args[2], ctx->args[4], true);
}

static __always_inline int on_exec_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct oci_exec_failed_rec *r;

	if (!bpf_map_lookup_elem(&execs_in_flight, &tid))
		return 0;
	bpf_map_delete_elem(&execs_in_flight, &tid);
	if (ret >= 0)
		return 0;
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count(OCI_STAT_RINGBUF_FULL);
		return 0;
	}
	r->hdr.type = OCI_REC_EXEC_FAILED;
	r->hdr.flags = 0;
	fill_task(&r->hdr.task, bpf_get_current_task_btf());
	r->err = -ret;
	r->_pad = 0;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	return on_exec_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int exit_execveat(struct trace_event_raw_sys_exit *ctx)
{
	return on_exec_exit(ctx->ret);
}

/* A runtime known by its inode is named by its file's name. One known only by its name is
 * named by the path it was exec'd by: its own file may be a private copy by then (crun's
 * bind mount of itself), and the path is what tells where it lives. */
static __always_inline void emit_runtime_exec(struct task_struct *task, struct file *exe, __u32 kind,
					      __u32 flags, struct trace_event_raw_sched_process_exec *ctx)
{
	__u32 zero = 0;
	struct oci_runtime_rec *r = bpf_map_lookup_elem(&runtime_scratch, &zero);
	struct inode *inode = BPF_CORE_READ(exe, f_inode);

	if (!r)
		return;
	r->hdr.type = OCI_REC_RUNTIME_EXEC;
	r->hdr.flags = flags | (kind == OCI_BIN_MONITOR ? OCI_F_MONITOR : 0);
	fill_task(&r->hdr.task, task);
	r->inode.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	r->inode.ino = BPF_CORE_READ(inode, i_ino);
	r->argc = 0;
	r->args_len = 0;
	if (flags & OCI_F_BY_NAME)
		bpf_probe_read_kernel_str(r->filename, OCI_FILENAME_LEN,
					  (void *)ctx + (ctx->__data_loc_filename & 0xFFFF));
	else
		bpf_probe_read_kernel_str(r->filename, OCI_FILENAME_LEN,
					  BPF_CORE_READ(exe, f_path.dentry, d_name.name));
	copy_arg_area(r, task);
	submit_runtime_rec(r);
}

static __always_inline void emit_init_exec(struct task_struct *task, struct oci_lineage *lin,
					   struct trace_event_raw_sched_process_exec *ctx)
{
	struct oci_init_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	unsigned int loc = ctx->__data_loc_filename & 0xFFFF;

	if (!r) {
		count(OCI_STAT_RINGBUF_FULL);
		return;
	}
	r->hdr.type = OCI_REC_INIT_EXEC;
	r->hdr.flags = 0;
	fill_task(&r->hdr.task, task);
	r->session_pid = lin->session_pid;
	r->runtime_mntns = lin->runtime_mntns;
	bpf_probe_read_kernel_str(r->filename, OCI_FILENAME_LEN, (void *)ctx + loc);
	bpf_ringbuf_submit(r, 0);
}

SEC("tracepoint/sched/sched_process_exec")
int sched_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	__u32 tgid = host_tgid(task), kind = inode_kind(exe), flags = 0;
	struct oci_lineage *lin = bpf_map_lookup_elem(&lineage, &tgid), session;
	bool linked = BPF_CORE_READ(exe, f_inode, __i_nlink) != 0;

	/* an exec from a thread other than the leader took the leader's pid:
	 * its sys_exit will not find the tid it entered with */
	if (ctx->old_pid != ctx->pid) {
		__u32 old = ctx->old_pid;

		bpf_map_delete_elem(&execs_in_flight, &old);
	}
	if (!tgid)
		return 0;
	if (!kind && linked) {
		kind = name_kind(task, exe);
		flags = kind ? OCI_F_BY_NAME : 0;
	}
	if (kind) {
		emit_runtime_exec(task, exe, kind, flags, ctx);
		session.session_pid = tgid;
		session.runtime_mntns = mntns_of(task);
		session.runtime_ino = BPF_CORE_READ(exe, f_inode, i_ino);
		/* A runtime re-exec'ing itself (runc init from its sealed copy,
		 * runsc's sandbox in its new namespaces) stays part of the
		 * session it descends from. Another runtime exec'd in another
		 * mount namespace (a kind node's, entered by `docker exec`, or
		 * a container's entrypoint) is a session of its own, and that
		 * descendant's first exec there: the entrypoint. */
		if (lin && lin->runtime_ino != session.runtime_ino && lin->runtime_mntns != session.runtime_mntns) {
			emit_init_exec(task, lin, ctx);
			bpf_map_update_elem(&containers, &tgid, lin, BPF_ANY);
			bpf_map_delete_elem(&lineage, &tgid);
			lin = NULL;
		}
		if (kind == OCI_BIN_RUNTIME && !lin)
			bpf_map_update_elem(&sessions, &tgid, &session, BPF_ANY);
		return 0;
	}
	/* The runtimes' private copies of themselves (memfd, O_TMPFILE: crun's
	 * /dev/fd/N, youki's sealed memfd, runc's clone) have no links: a
	 * runtime re-exec'ing one stays the runtime it was. */
	if (!linked)
		return 0;
	bpf_map_delete_elem(&sessions, &tgid);
	/* hooks run in the runtime's mount namespace: not the entrypoint */
	if (!lin || mntns_of(task) == lin->runtime_mntns)
		return 0;
	emit_init_exec(task, lin, ctx);
	bpf_map_update_elem(&containers, &tgid, lin, BPF_ANY);
	bpf_map_delete_elem(&lineage, &tgid);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid, ctgid;
	struct oci_lineage *from;

	if (child->pid != child->tgid)
		return 0; /* a new thread, not a new process */
	ptgid = host_tgid(parent);
	ctgid = host_tgid(child);
	if (!ctgid)
		return 0;
	from = bpf_map_lookup_elem(&sessions, &ptgid);
	if (!from)
		from = bpf_map_lookup_elem(&lineage, &ptgid);
	if (from)
		bpf_map_update_elem(&lineage, &ctgid, from, BPF_ANY);
	return 0;
}

static __always_inline void emit_exit(struct task_struct *task, __u32 kind, __u32 session_pid)
{
	struct oci_exit_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	int flags = BPF_CORE_READ(task, signal, flags);

	if (!r) {
		count(OCI_STAT_RINGBUF_FULL);
		return;
	}
	r->hdr.type = OCI_REC_EXIT;
	r->hdr.flags = 0;
	fill_task(&r->hdr.task, task);
	r->kind = kind;
	r->session_pid = session_pid;
	r->status = (flags & SIGNAL_GROUP_EXIT) ? BPF_CORE_READ(task, signal, group_exit_code)
						: BPF_CORE_READ(task, exit_code);
	r->_pad = 0;
	bpf_ringbuf_submit(r, 0);
}

SEC("tracepoint/sched/sched_process_exit")
int sched_exit(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid;
	struct oci_lineage *lin;

	/* do_exit() decrements signal->live before this tracepoint: 0 means
	 * the last thread of the process is leaving */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	tgid = host_tgid(task);
	if (!tgid)
		return 0;
	/* a container whose entrypoint is a runtime is both */
	if (bpf_map_lookup_elem(&sessions, &tgid)) {
		emit_exit(task, OCI_EXIT_RUNTIME, tgid);
		bpf_map_delete_elem(&sessions, &tgid);
	}
	lin = bpf_map_lookup_elem(&containers, &tgid);
	if (lin) {
		emit_exit(task, OCI_EXIT_CONTAINER, lin->session_pid);
		bpf_map_delete_elem(&containers, &tgid);
		return 0;
	}
	lin = bpf_map_lookup_elem(&lineage, &tgid);
	if (lin) {
		if (mntns_of(task) != lin->runtime_mntns)
			emit_exit(task, OCI_EXIT_PRESTART, lin->session_pid);
		bpf_map_delete_elem(&lineage, &tgid);
	}
	return 0;
}
