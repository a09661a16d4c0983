#include "bpf_tracer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ocinotify.skel.h"

namespace ocinotify {

namespace {

// libbpf prints to stderr by default; a library must not write to the
// embedding process's stderr.
int Quiet(libbpf_print_level, const char*, va_list) { return 0; }

std::string Failure(const char* what, int err) {
  return std::string(what) + ": " + strerror(err < 0 ? -err : err);
}

// Tracepoints are attached by the ids tracefs lists. Machines without
// systemd may not have tracefs mounted: mount it for the attach only, as the
// attached links do not need it afterwards.
class TracefsForAttach {
 public:
  TracefsForAttach() {
    if (access("/sys/kernel/tracing/events", F_OK) == 0 ||
        access("/sys/kernel/debug/tracing/events", F_OK) == 0)
      return;
    mounted_ = mount("tracefs", "/sys/kernel/tracing", "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                     nullptr) == 0;
  }
  ~TracefsForAttach() {
    if (mounted_) umount2("/sys/kernel/tracing", MNT_DETACH);
  }

 private:
  bool mounted_ = false;
};

// 1 from libbpf's probes: the kernel has it.
std::string Probed(int result) {
  if (result == 1) return "";
  return result == 0 ? "not supported" : Failure("cannot probe", result);
}

// A program of the sched_fork kind: BPF_PROG_TYPE_TRACING at a BTF tracepoint.
std::string ProbeTpBtf() {
  int id = libbpf_find_vmlinux_btf_id("sched_process_fork", BPF_TRACE_RAW_TP);
  if (id < 0) return Failure("no BTF of tracepoint sched_process_fork", id);
  bpf_insn insns[2] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0
  insns[1].code = BPF_JMP | BPF_EXIT;
  bpf_prog_load_opts opts{};
  opts.sz = sizeof(opts);
  opts.expected_attach_type = BPF_TRACE_RAW_TP;
  opts.attach_btf_id = static_cast<__u32>(id);
  int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "ocinotify_probe", "GPL", insns, 2, &opts);
  if (fd < 0) return Failure("load", errno);
  close(fd);
  return "";
}

std::string ProbeSyscallTracepoints() {
  TracefsForAttach tracefs;
  for (const char* dir : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
    std::string id = std::string(dir) + "/events/syscalls/sys_enter_execve/id";
    if (access(id.c_str(), F_OK) == 0) return "";
  }
  return "no tracepoint syscalls/sys_enter_execve (CONFIG_FTRACE_SYSCALLS, tracefs)";
}

}  // namespace

BpfTracer::~BpfTracer() { Close(); }

std::vector<Mechanism> BpfTracer::Probe() {
  libbpf_set_print(Quiet);
  std::vector<Mechanism> out{
      {"BPF", Probed(libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACEPOINT, nullptr))},
      {"BTF", access("/sys/kernel/btf/vmlinux", R_OK) == 0 ? "" : Failure("/sys/kernel/btf/vmlinux", errno)},
      {"syscall tracepoints", ProbeSyscallTracepoints()},
  };
  // libbpf takes a helper it cannot load a program with for supported: only when programs load.
  std::string bpf = out.front().error;
  auto helper = [&bpf](bpf_func_id id) {
    return bpf.empty() ? Probed(libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, id, nullptr)) : "needs BPF";
  };
  out.push_back({"tp_btf", bpf.empty() ? ProbeTpBtf() : "needs BPF"});
  out.push_back({"BPF ring buffer", bpf.empty() ? Probed(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr)) : "needs BPF"});
  out.push_back({"bpf_get_current_task_btf", helper(BPF_FUNC_get_current_task_btf)});
  out.push_back({"bpf_loop", helper(BPF_FUNC_loop)});
  return out;
}

std::string BpfTracer::Open(uint32_t watcherPidns, uint32_t hostPidns, const std::vector<std::string>& names,
                            const std::vector<RuntimeBinary>& binaries, Sink sink) {
  libbpf_set_print(Quiet);
  sink_ = std::move(sink);
  skel_ = ocinotify_bpf__open();
  if (!skel_) return Failure("open BPF object", errno);
  skel_->rodata->watcher_pidns = watcherPidns;
  skel_->rodata->host_pidns = hostPidns;
  int err = ocinotify_bpf__load(skel_);
  if (err) return Failure("load BPF programs (needs CAP_BPF+CAP_PERFMON or CAP_SYS_ADMIN, and BTF)", err);
  for (const auto& name : names) AddName(name, name == "conmon" ? OCI_BIN_MONITOR : OCI_BIN_RUNTIME);
  for (const auto& b : binaries) AddBinary(b);
  {
    TracefsForAttach tracefs;
    err = ocinotify_bpf__attach(skel_);
  }
  if (err) return Failure("attach tracepoints", err);
  rb_ = ring_buffer__new(bpf_map__fd(skel_->maps.events), OnRecord, this, nullptr);
  if (!rb_) return Failure("ring buffer", errno);
  return "";
}

void BpfTracer::AddBinary(const RuntimeBinary& b) {
  oci_inode_key key{b.kernel.dev, b.kernel.ino};
  uint32_t kind = b.kind;
  bpf_map__update_elem(skel_->maps.runtime_inodes, &key, sizeof(key), &kind, sizeof(kind), BPF_ANY);
}

bool BpfTracer::TrackContainer(uint32_t pid, uint32_t sessionPid, bool started, uint32_t runtimeMntns) {
  if (!skel_) return false;
  oci_lineage value{sessionPid, runtimeMntns, 0};
  bpf_map* map = started ? skel_->maps.containers : skel_->maps.lineage;
  return bpf_map__update_elem(map, &pid, sizeof(pid), &value, sizeof(value), BPF_ANY) == 0;
}

void BpfTracer::RemoveBinary(const InodeKey& kernel) {
  oci_inode_key key{kernel.dev, kernel.ino};
  bpf_map__delete_elem(skel_->maps.runtime_inodes, &key, sizeof(key), 0);
}

void BpfTracer::AddName(const std::string& name, uint32_t kind) {
  char key[OCI_NAME_LEN] = {};
  strncpy(key, name.c_str(), OCI_NAME_LEN - 1);
  bpf_map__update_elem(skel_->maps.runtime_names, key, sizeof(key), &kind, sizeof(kind), BPF_ANY);
}

int BpfTracer::OnRecord(void* ctx, void* data, size_t size) {
  static_cast<BpfTracer*>(ctx)->sink_(data, size);
  return 0;
}

int BpfTracer::EpollFd() const { return rb_ ? ring_buffer__epoll_fd(rb_) : -1; }

void BpfTracer::Drain() {
  if (rb_) ring_buffer__consume(rb_);
}

uint64_t BpfTracer::Stat(uint32_t which) const {
  if (!skel_) return 0;
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return 0;
  std::vector<uint64_t> values(ncpu);
  if (bpf_map__lookup_elem(skel_->maps.stats, &which, sizeof(which), values.data(),
                           values.size() * sizeof(uint64_t), 0))
    return 0;
  uint64_t sum = 0;
  for (auto v : values) sum += v;
  return sum;
}

void BpfTracer::Close() {
  if (rb_) ring_buffer__free(rb_);
  rb_ = nullptr;
  if (skel_) ocinotify_bpf__destroy(skel_);
  skel_ = nullptr;
}

std::vector<std::string> SplitArgs(const char* buf, size_t len) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < len; i++) {
    if (buf[i] == 0) {
      out.emplace_back(buf + start, i - start);
      start = i + 1;
    }
  }
  if (start < len) out.emplace_back(buf + start, len - start);
  return out;
}

}  // namespace ocinotify
