// N-API glue: convert, call, convert back. Everything with opinions lives in
// src/ (TypeScript) or in the reactor.
#include <fcntl.h>
#include <malloc.h>
#include <napi.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <initializer_list>
#include <memory>
#include <utility>

#include "inode_key.h"
#include "kernel_probe.h"
#include "reactor.h"
#include "read_in_root.h"

namespace ocinotify {

namespace {

const char* KindName(RecordKind k) {
  switch (k) {
    case RecordKind::Exec: return "exec";
    case RecordKind::RuntimeExec: return "runtime-exec";
    case RecordKind::InitExec: return "init-exec";
    case RecordKind::Exit: return "exit";
    case RecordKind::GateExpired: return "gate-expired";
    case RecordKind::Lost: return "lost";
    case RecordKind::Binary: return "binary";
    case RecordKind::ExecFailed: return "exec-failed";
    case RecordKind::WatchdogAnswered: return "watchdog-answered";
    case RecordKind::Watchdog: return "watchdog";
  }
  return "unknown";
}

const char* SourceName(ArgvSource s) {
  switch (s) {
    case ArgvSource::None: return "none";
    case ArgvSource::EnterTracepoint: return "sys_enter";
    case ArgvSource::ExecTracepoint: return "sched_exec";
    case ArgvSource::ProcMem: return "proc";
  }
  return "none";
}

Napi::Value VerdictName(Napi::Env env, WatchdogVerdict v) {
  switch (v) {
    case WatchdogVerdict::Allowed: return Napi::String::New(env, "allowed");
    case WatchdogVerdict::Denied: return Napi::String::New(env, "denied");
    case WatchdogVerdict::None: break;
  }
  return env.Null();
}

// The records' property names, made once per environment. A key that is
// already an internalized string costs no string-table lookup per property,
// which was most of building a record (perf: InternalizeUtf8String under
// napi_set_named_property).
#define OCI_KEYS(X)                                                                               \
  X(kind) X(cookie) X(allowed) X(count) X(reason) X(path) X(foundAt) X(runtime) X(binaryKind)     \
  X(present) X(markError) X(ts) X(cgroupId) X(mntns) X(pid) X(tid) X(vpid) X(vtid) X(ppid) X(euid) \
  X(flags) X(filename) X(held) X(argvSource) X(binary) X(argv) X(sessionPid) X(runtimeMntns)       \
  X(errno) X(exitKind) X(status) X(watchdog) X(change) X(message) X(waitedNs) X(denied) X(foundBy) X(pidns)  \
  X(spec) X(root) X(bytes) X(error) X(slow)

enum KeyId {
#define X(name) k_##name,
  OCI_KEYS(X)
#undef X
  kKeyCount
};

// An array of the key strings, held by reference (Node-API 8 references
// objects only); each batch takes its handles from it.
struct Keys {
  Napi::ObjectReference array;

  explicit Keys(Napi::Env env) {
    Napi::Array names = Napi::Array::New(env, kKeyCount);
    Napi::Object warm = Napi::Object::New(env);
    uint32_t i = 0;
#define X(name)                                     \
  {                                                 \
    Napi::String key = Napi::String::New(env, #name); \
    warm.Set(key, true); /* made internal, once */   \
    names.Set(i++, key);                            \
  }
    OCI_KEYS(X)
#undef X
    array = Napi::Persistent(names.As<Napi::Object>());
  }
};

// One batch's handles to the keys.
class KeySet {
 public:
  KeySet(Keys& keys) {
    Napi::Object names = keys.array.Value();
    for (uint32_t i = 0; i < kKeyCount; i++) values_[i] = names.Get(i);
  }
  napi_value operator[](KeyId id) const { return values_[id]; }

 private:
  napi_value values_[kKeyCount];
};

// An exec's config.json as read ahead: null when it was not (JavaScript reads it then).
Napi::Value SpecToJs(Napi::Env env, const KeySet& k, const SpecRead& s) {
  if (s.state == SpecRead::State::None) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set(k[k_root], s.root);
  o.Set(k[k_path], s.path);
  o.Set(k[k_bytes], s.state == SpecRead::State::Read ? Napi::Value(Napi::Buffer<char>::Copy(env, s.bytes.data(), s.bytes.size()))
                                                     : env.Null());
  o.Set(k[k_error], s.error);
  o.Set(k[k_slow], s.state == SpecRead::State::Slow);
  return o;
}

Napi::Object ToJs(Napi::Env env, const KeySet& k, const Record& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set(k[k_kind], KindName(r.kind));
  switch (r.kind) {
    case RecordKind::GateExpired:
    case RecordKind::WatchdogAnswered:
      o.Set(k[k_cookie], Napi::Number::New(env, static_cast<double>(r.cookie)));
      o.Set(k[k_allowed], r.allowed);
      return o;
    case RecordKind::Watchdog:
      o.Set(k[k_ts], Napi::BigInt::New(env, static_cast<uint64_t>(r.task.ts_ns)));
      o.Set(k[k_change], r.facts.change);
      o.Set(k[k_message], r.facts.message);
      o.Set(k[k_waitedNs], Napi::Number::New(env, static_cast<double>(r.facts.waitedNs)));
      o.Set(k[k_allowed], Napi::Number::New(env, static_cast<double>(r.facts.allowed)));
      o.Set(k[k_denied], Napi::Number::New(env, static_cast<double>(r.facts.denied)));
      o.Set(k[k_pid], r.facts.pid);
      return o;
    case RecordKind::Lost:
      o.Set(k[k_count], Napi::Number::New(env, static_cast<double>(r.count)));
      o.Set(k[k_reason], r.reason);
      return o;
    case RecordKind::Binary:
      o.Set(k[k_path], r.binary);
      o.Set(k[k_foundAt], r.filename);
      o.Set(k[k_runtime], r.runtime);
      o.Set(k[k_binaryKind], r.exitKind);
      o.Set(k[k_present], r.present);
      o.Set(k[k_markError], r.reason);
      o.Set(k[k_foundBy], (r.flags & OCI_F_BY_NAME) ? "exec" : "path");
      // Learnt from an exec: the runtime's mount namespace, where path is its path; its pid
      // when it was learnt (0 when it is gone).
      o.Set(k[k_mntns], r.task.mntns);
      o.Set(k[k_pid], r.task.pid);
      return o;
    default:
      break;
  }
  const oci_task& t = r.task;
  o.Set(k[k_ts], Napi::BigInt::New(env, static_cast<uint64_t>(t.ts_ns)));
  o.Set(k[k_cgroupId], Napi::BigInt::New(env, static_cast<uint64_t>(t.cgroup_id)));
  o.Set(k[k_mntns], t.mntns);
  o.Set(k[k_pid], t.pid);
  o.Set(k[k_tid], t.tid);
  o.Set(k[k_vpid], t.vpid);
  o.Set(k[k_vtid], t.vtid);
  o.Set(k[k_ppid], t.ppid);
  o.Set(k[k_euid], t.euid);
  o.Set(k[k_pidns], t.pidns);
  o.Set(k[k_flags], r.flags);
  o.Set(k[k_filename], r.filename);
  switch (r.kind) {
    case RecordKind::Exec:
    case RecordKind::RuntimeExec: {
      o.Set(k[k_cookie], Napi::Number::New(env, static_cast<double>(r.cookie)));
      o.Set(k[k_held], r.held);
      o.Set(k[k_watchdog], VerdictName(env, r.watchdog));
      o.Set(k[k_argvSource], SourceName(r.argvSource));
      o.Set(k[k_binary], r.binary);
      Napi::Array argv = Napi::Array::New(env, r.argv.size());
      for (size_t i = 0; i < r.argv.size(); i++) argv.Set(i, Napi::String::New(env, r.argv[i]));
      o.Set(k[k_argv], argv);
      o.Set(k[k_spec], SpecToJs(env, k, r.spec));
      break;
    }
    case RecordKind::InitExec:
      o.Set(k[k_sessionPid], r.sessionPid);
      o.Set(k[k_runtimeMntns], r.runtimeMntns);
      break;
    case RecordKind::ExecFailed:
      o.Set(k[k_errno], r.status);
      break;
    case RecordKind::Exit:
      o.Set(k[k_exitKind], r.exitKind);
      o.Set(k[k_sessionPid], r.sessionPid);
      o.Set(k[k_status], r.status);
      break;
    default:
      break;
  }
  return o;
}

std::vector<std::string> Strings(Napi::Value v) {
  std::vector<std::string> out;
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(a.Get(i).ToString().Utf8Value());
  return out;
}

void Deliver(Napi::Env env, Napi::Function callback, void*, Batch* batch) {
  std::unique_ptr<Batch> owned(batch);
  if (!env || !callback) return;
  KeySet keys(*env.GetInstanceData<Keys>());
  Napi::Array arr = Napi::Array::New(env, owned->size());
  for (size_t i = 0; i < owned->size(); i++) arr.Set(i, ToJs(env, keys, (*owned)[i]));
  callback.Call({arr});
}

}  // namespace

class Watcher : public Napi::ObjectWrap<Watcher> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Watcher",
                       {InstanceMethod("answer", &Watcher::Answer),
                        InstanceMethod("watchPid", &Watcher::WatchPid),
                        InstanceMethod("setExpiryVerdict", &Watcher::SetExpiryVerdict),
                        InstanceMethod("trackContainer", &Watcher::TrackContainer),
                        InstanceMethod("stats", &Watcher::Stats),
                        InstanceMethod("close", &Watcher::Close)});
  }

  // new Watcher(options, onBatch)
  Watcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Watcher>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "Watcher(options, onBatch)").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    ReactorOptions opt;
    opt.useBpf = o.Get("useBpf").ToBoolean();
    opt.useFanotify = o.Get("useFanotify").ToBoolean();
    opt.gateTimeoutMs = o.Get("gateTimeoutMs").ToNumber().Uint32Value();
    opt.allowOnExpiry = o.Get("allowOnExpiry").ToBoolean();
    Napi::Object holdVerbs = o.Get("holdVerbs").As<Napi::Object>();
    opt.holdVerbs = {Strings(holdVerbs.Get("create")), Strings(holdVerbs.Get("start"))};
    opt.maxHeld = o.Get("maxHeld").ToNumber().Uint32Value();
    opt.watcherPidns = o.Get("watcherPidns").ToNumber().Uint32Value();
    opt.watcherInInitPidns = o.Get("watcherInInitPidns").ToBoolean();
    opt.hostProc = o.Get("hostProc").ToString().Utf8Value();
    opt.hostPidns = o.Get("hostPidns").ToNumber().Uint32Value();
    opt.names = Strings(o.Get("names"));
    Napi::Array bins = o.Get("binaries").As<Napi::Array>();
    for (uint32_t i = 0; i < bins.Length(); i++) {
      Napi::Object b = bins.Get(i).As<Napi::Object>();
      opt.binaries.push_back(
          {b.Get("path").ToString().Utf8Value(), b.Get("kind").ToNumber().Uint32Value(), InodeKey{}, InodeKey{}});
    }
    Napi::Object watchdog = o.Get("watchdog").As<Napi::Object>();
    opt.watchdog.enabled = watchdog.Get("enabled").ToBoolean();
    opt.watchdog.allowCreations = watchdog.Get("allowCreations").ToBoolean();
    opt.watchdog.socketPath = watchdog.Get("socket").ToString().Utf8Value();
    opt.maxSpecBytes = static_cast<size_t>(o.Get("maxSpecBytes").ToNumber().DoubleValue());
    Napi::Value candidates = o.Get("candidates");
    if (candidates.IsArray()) {
      Napi::Array list = candidates.As<Napi::Array>();
      for (uint32_t i = 0; i < list.Length(); i++) {
        Napi::Object c = list.Get(i).As<Napi::Object>();
        opt.candidates.push_back({c.Get("path").ToString().Utf8Value(), c.Get("runtime").ToString().Utf8Value(),
                                  c.Get("kind").ToNumber().Uint32Value()});
      }
    }
    tsfn_ = Napi::TypedThreadSafeFunction<void, Batch, Deliver>::New(
        env, info[1].As<Napi::Function>(), "ocinotify", 0, 1);
    reactor_ = std::make_unique<Reactor>(std::move(opt));
    ReactorStatus st = reactor_->Start([this](Batch* b) {
      if (tsfn_.NonBlockingCall(b) != napi_ok) delete b;
    });
    Napi::Object status = Napi::Object::New(env);
    status.Set("bpf", st.bpf);
    status.Set("fanotify", st.fanotify);
    status.Set("bpfError", st.bpfError);
    status.Set("fanotifyError", st.fanotifyError);
    Napi::Array marked = Napi::Array::New(env, st.marked.size());
    for (size_t i = 0; i < st.marked.size(); i++) marked.Set(i, st.marked[i]);
    status.Set("marked", marked);
    Napi::Array errs = Napi::Array::New(env, st.binaryErrors.size());
    for (size_t i = 0; i < st.binaryErrors.size(); i++) {
      Napi::Object e = Napi::Object::New(env);
      e.Set("path", st.binaryErrors[i].path);
      e.Set("error", st.binaryErrors[i].error);
      errs.Set(i, e);
    }
    status.Set("binaryErrors", errs);
    info.This().As<Napi::Object>().Set("status", status);
    if (!st.bpf && !st.fanotify) CloseNative();
  }

  ~Watcher() override { CloseNative(); }

 private:
  Napi::Value Answer(const Napi::CallbackInfo& info) {
    if (!reactor_) return Napi::Boolean::New(info.Env(), false);
    uint64_t cookie = static_cast<uint64_t>(info[0].ToNumber().DoubleValue());
    return Napi::Boolean::New(info.Env(), reactor_->Answer(cookie, info[1].ToBoolean()));
  }

  Napi::Value WatchPid(const Napi::CallbackInfo& info) {
    if (reactor_)
      reactor_->WatchPid(info[0].ToNumber().Uint32Value(), info[1].ToNumber().Uint32Value(),
                         info[2].ToNumber().Uint32Value());
    return info.Env().Undefined();
  }

  Napi::Value SetExpiryVerdict(const Napi::CallbackInfo& info) {
    if (!reactor_) return Napi::Boolean::New(info.Env(), false);
    uint64_t cookie = static_cast<uint64_t>(info[0].ToNumber().DoubleValue());
    return Napi::Boolean::New(info.Env(), reactor_->SetExpiryVerdict(cookie, info[1].ToBoolean()));
  }

  Napi::Value TrackContainer(const Napi::CallbackInfo& info) {
    if (!reactor_) return Napi::Boolean::New(info.Env(), false);
    return Napi::Boolean::New(
        info.Env(), reactor_->TrackContainer(info[0].ToNumber().Uint32Value(), info[1].ToNumber().Uint32Value(),
                                             info[2].ToBoolean(), info[3].ToNumber().Uint32Value()));
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    if (!reactor_) return o;
    ReactorStats s = reactor_->Stats();
    auto num = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
    num("held", s.holds.held);
    num("heldNow", s.holds.heldNow);
    num("answeredByJs", s.holds.answeredByJs);
    num("expired", s.holds.expired);
    num("answeredNative", s.holds.answeredNative);
    num("ringbufFull", s.ringbufFull);
    num("queueOverflow", s.queueOverflow);
    num("enterUnmatched", s.enterUnmatched);
    num("answeredByWatchdog", s.holds.answeredByWatchdog);
    num("watchdogPid", static_cast<uint64_t>(s.watchdog.pid));
    num("watchdogStarts", s.watchdog.starts);
    num("watchdogTakeovers", s.watchdog.takeovers);
    num("watchdogAllowed", s.watchdog.allowed);
    num("watchdogDenied", s.watchdog.denied);
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseNative();
    return info.Env().Undefined();
  }

  void CloseNative() {
    if (reactor_) {
      reactor_->Stop();
      reactor_.reset();
      tsfn_.Release();
    }
  }

  std::unique_ptr<Reactor> reactor_;
  Napi::TypedThreadSafeFunction<void, Batch, Deliver> tsfn_;
};

Napi::Value ReadFileInRootJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<char> data;
  std::string code;
  std::string root = info[0].ToString().Utf8Value();
  std::string path = info[1].ToString().Utf8Value();
  size_t max = static_cast<size_t>(info[2].ToNumber().DoubleValue());
  if (!ReadFileInRoot(root, path, max, data, code)) {
    Napi::Error err = Napi::Error::New(env, code + ": " + path + " (in " + root + ")");
    err.Set("code", code);
    err.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Buffer<char>::Copy(env, data.data(), data.size());
}

Napi::Object KeyToJs(Napi::Env env, const InodeKey& key) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("dev", Napi::BigInt::New(env, key.dev));
  o.Set("ino", Napi::BigInt::New(env, key.ino));
  return o;
}

// inodeKeys(path): {file, kernel, keyError} of the file path names (inode_key.h); kernel is null
// when it cannot be learnt. Throws when the file cannot be opened.
Napi::Value InodeKeysJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].ToString().Utf8Value();
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    std::string error = path + ": " + strerror(errno);
    if (fd >= 0) close(fd);
    Napi::Error::New(env, error).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  KernelKeys keys;
  InodeKey kernel;
  std::string keyError = keys.Of(fd, kernel);
  close(fd);
  Napi::Object o = Napi::Object::New(env);
  o.Set("file", KeyToJs(env, StatKey(st)));
  o.Set("kernel", keyError.empty() ? Napi::Value(KeyToJs(env, kernel)) : env.Null());
  o.Set("keyError", keyError);
  return o;
}

// probeKernel(): [{name, error}] for each mechanism (kernel_probe.h); error '' when present.
Napi::Value ProbeKernelJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<Mechanism> probes = ProbeKernel();
  Napi::Array out = Napi::Array::New(env, probes.size());
  for (size_t i = 0; i < probes.size(); i++) {
    Napi::Object m = Napi::Object::New(env);
    m.Set("name", probes[i].name);
    m.Set("error", probes[i].error);
    out.Set(i, m);
  }
  return out;
}

// Hands the kernel back the pages malloc holds free in any arena; true if it released some.
Napi::Value TrimMallocJs(const Napi::CallbackInfo& info) {
#ifdef __GLIBC__
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

Napi::Object Frozen(Napi::Env env, std::initializer_list<std::pair<const char*, uint32_t>> members) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [name, value] : members) o.Set(name, value);
  o.Freeze();
  return o;
}

// The enums of bpf/ocinotify.h that JavaScript reads (src/native.ts).
Napi::Object Constants(Napi::Env env) {
  Napi::Object constants = Napi::Object::New(env);
  constants.Set("exitKind", Frozen(env, {{"runtime", OCI_EXIT_RUNTIME},
                                         {"container", OCI_EXIT_CONTAINER},
                                         {"prestart", OCI_EXIT_PRESTART}}));
  constants.Set("binaryKind", Frozen(env, {{"runtime", OCI_BIN_RUNTIME}, {"monitor", OCI_BIN_MONITOR}}));
  constants.Set("recordFlag", Frozen(env, {{"argsTruncated", OCI_F_ARGS_TRUNCATED},
                                           {"execveat", OCI_F_EXECVEAT},
                                           {"monitor", OCI_F_MONITOR},
                                           {"byName", OCI_F_BY_NAME}}));
  constants.Freeze();
  return constants;
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new Keys(env));
  exports.Set("Watcher", Watcher::Init(env));
  exports.Set("constants", Constants(env));
  exports.Set("readFileInRoot", Napi::Function::New(env, ReadFileInRootJs));
  exports.Set("trimMalloc", Napi::Function::New(env, TrimMallocJs));
  exports.Set("inodeKeys", Napi::Function::New(env, InodeKeysJs));
  exports.Set("probeKernel", Napi::Function::New(env, ProbeKernelJs));
  return exports;
}

NODE_API_MODULE(ocinotify, InitModule)

}  // namespace ocinotify
