#include "spec_reader.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>

#include "read_in_root.h"

namespace ocinotify {

namespace {

bool StartsWith(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

bool IsVerb(const std::vector<std::string>& verbs, const std::string& arg) {
  return std::find(verbs.begin(), verbs.end(), arg) != verbs.end();
}

std::string Cwd(const std::string& procDir) {
  char buf[4096];
  ssize_t n = readlink((procDir + "/cwd").c_str(), buf, sizeof(buf));
  return n > 0 && n < static_cast<ssize_t>(sizeof(buf)) ? std::string(buf, n) : std::string();
}

}  // namespace

std::string BundleOf(const std::vector<std::string>& argv, const std::vector<std::string>& createVerbs) {
  size_t i = 1;
  while (i < argv.size() && !IsVerb(createVerbs, argv[i])) i++;
  std::string bundle = ".";
  for (i++; i < argv.size(); i++) {
    const std::string& a = argv[i];
    for (const std::string flag : {"--bundle", "-bundle", "-b"}) {
      if (a == flag && i + 1 < argv.size()) bundle = argv[i + 1];
      else if (StartsWith(a, flag + "=")) bundle = a.substr(flag.size() + 1);
    }
  }
  return bundle;
}

std::string NormalizePath(const std::string& path) {
  std::vector<std::string> parts;
  size_t at = 0;
  while (at <= path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string::npos) slash = path.size();
    std::string part = path.substr(at, slash - at);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    at = slash + 1;
  }
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

std::chrono::milliseconds SpecReader::WaitFor(uint32_t gateTimeoutMs) {
  return std::max(std::chrono::milliseconds(50), std::chrono::milliseconds(gateTimeoutMs / 4));
}

void SpecReader::Open(std::function<void()> done, std::vector<std::string> createVerbs, size_t maxBytes,
                      std::chrono::milliseconds wait) {
  state_->done = std::move(done);
  state_->maxBytes = maxBytes;
  state_->wait = wait;
  createVerbs_ = std::move(createVerbs);
  thread_ = std::thread(Run, state_);
}

void SpecReader::Close() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(state_->doneMu);
    state_->done = nullptr;
  }
  bool stuck;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stopping = true;
    stuck = state_->Stuck();
  }
  state_->cv.notify_all();
  // A read that hangs keeps its thread, and the thread its state, until the read returns.
  if (stuck)
    thread_.detach();
  else
    thread_.join();
}

void SpecReader::Start(Record& rec, const std::string& procDir) {
  if (!thread_.joinable() || rec.argv.empty()) return;
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->Stuck()) return;
  auto now = Clock::now();
  for (auto it = state_->jobs.begin(); it != state_->jobs.end();)
    it = it->second->done && now - it->second->queued >= kKeep ? state_->jobs.erase(it) : std::next(it);
  auto job = std::make_shared<Job>();
  job->queued = now;
  job->procDir = procDir;
  job->bundle = BundleOf(rec.argv, createVerbs_);
  rec.specJob = nextId_++;
  state_->jobs[rec.specJob] = job;
  state_->queue.push_back(rec.specJob);
  state_->cv.notify_one();
}

bool SpecReader::Ready(const Batch& batch, Clock::time_point since) {
  if (Clock::now() - since >= state_->wait) return true;
  std::lock_guard<std::mutex> lock(state_->mu);
  for (const auto& rec : batch) {
    auto it = rec.specJob ? state_->jobs.find(rec.specJob) : state_->jobs.end();
    if (it != state_->jobs.end() && !it->second->done) return false;
  }
  return true;
}

void SpecReader::Attach(Batch& batch) {
  std::lock_guard<std::mutex> lock(state_->mu);
  for (auto& rec : batch) {
    auto it = rec.specJob ? state_->jobs.find(rec.specJob) : state_->jobs.end();
    if (it == state_->jobs.end()) continue;
    Job& job = *it->second;
    if (job.done) {
      rec.spec = std::move(job.result);
    } else if (job.started) {
      rec.spec.state = SpecRead::State::Slow;
      rec.spec.root = job.root;
      rec.spec.path = job.path;
    } else {
      auto& q = state_->queue;
      q.erase(std::remove(q.begin(), q.end(), rec.specJob), q.end());
    }
    state_->jobs.erase(it);
  }
}

void SpecReader::Run(std::shared_ptr<State> state) {
  pthread_setname_np(pthread_self(), "ocinotify-spec");
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(state->mu);
      state->cv.wait(lock, [&] { return state->stopping || !state->queue.empty(); });
      if (state->stopping) return;
      uint64_t id = state->queue.front();
      state->queue.pop_front();
      job = state->jobs[id];
      job->started = true;
      state->running = id;
      state->runningSince = Clock::now();
    }
    ReadOne(*state, *job);
    {
      std::lock_guard<std::mutex> lock(state->mu);
      job->done = true;
      state->running = 0;
    }
    std::lock_guard<std::mutex> lock(state->doneMu);
    if (state->done) state->done();
  }
}

// Where it reads is set under the lock before it reads: a slow read is reported with its path.
void SpecReader::ReadOne(State& state, Job& job) {
  std::string bundle = job.bundle;
  if (bundle[0] != '/') {
    std::string cwd = Cwd(job.procDir);
    if (cwd.empty() || cwd[0] != '/') return;
    bundle = cwd + "/" + bundle;
  }
  {
    std::lock_guard<std::mutex> lock(state.mu);
    job.root = job.procDir + "/root";
    job.path = NormalizePath(bundle + "/config.json");
  }
  SpecRead r;
  r.root = job.root;
  r.path = job.path;
  r.state = ReadFileInRoot(r.root, r.path, state.maxBytes, r.bytes, r.error) ? SpecRead::State::Read
                                                                               : SpecRead::State::Failed;
  std::lock_guard<std::mutex> lock(state.mu);
  job.result = std::move(r);
}

}  // namespace ocinotify
