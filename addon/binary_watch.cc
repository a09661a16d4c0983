#include "binary_watch.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "inode_key.h"

namespace ocinotify {

namespace {

// What changes the file a path names: an entry appearing, going or renamed
// in a directory along it, or that directory itself going.
constexpr uint32_t kDirEvents =
    IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

std::vector<std::string> Components(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (end > start) out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

BinaryWatch::~BinaryWatch() { Close(); }

std::string BinaryWatch::Open(const std::vector<BinaryCandidate>& candidates,
                              const std::vector<RuntimeBinary>& marked) {
  fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) return std::string("inotify_init1: ") + strerror(errno);
  candidates_ = candidates;
  for (const auto& c : candidates_)
    for (auto& name : Components(c.path)) names_.insert(std::move(name));
  for (const auto& b : marked) {
    int fd = open(b.path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) continue;
    if (fstat(fd, &st) != 0 || StatKey(st) != b.file) {
      close(fd);
      continue;
    }
    // Which candidate led to it is learnt at the first rescan.
    found_[b.file] = {b, b.path, "", fd};
  }
  return "";
}

bool BinaryWatch::Read(std::vector<FoundBinary>& learnedGone) {
  alignas(inotify_event) char buf[8192];
  bool relevant = false;
  for (;;) {
    ssize_t n = read(fd_, buf, sizeof(buf));
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(p);
      auto learned = learned_.find(ev->wd);
      if (learned != learned_.end()) {
        // IN_IGNORED: evicted or unmounted; a deleted file marked for fanotify stays pinned
        // until then, but no path leads to it any more.
        if (ev->mask & (IN_DELETE_SELF | IN_IGNORED)) {
          learnedGone.push_back(learned->second);
          learned_.erase(learned);
        }
        p += sizeof(inotify_event) + ev->len;
        continue;
      }
      // A name that is no component of any candidate cannot change what one
      // resolves to: dpkg's runc.dpkg-new is not, its rename to runc is.
      if (ev->mask & (IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF))
        relevant = true;
      else if (ev->len && names_.count(ev->name))
        relevant = true;
      p += sizeof(inotify_event) + ev->len;
    }
  }
  return relevant;
}

void BinaryWatch::WatchLearned(int fd, const FoundBinary& binary) {
  std::string self = "/proc/self/fd/" + std::to_string(fd);
  int wd = inotify_add_watch(fd_, self.c_str(), IN_DELETE_SELF);
  if (wd >= 0) learned_[wd] = binary;
}

void BinaryWatch::WatchAncestors(const std::string& path, std::set<int>& wds) {
  // "/" first: a missing directory is watched for through its nearest
  // existing ancestor, down to the runtime binary's own directory.
  std::string dir = "/";
  std::vector<std::string> parts = Components(path);
  for (size_t i = 0; i < parts.size(); i++) {
    int wd = inotify_add_watch(fd_, dir.c_str(), kDirEvents);
    if (wd < 0) return;
    wds.insert(wd);
    if (i + 1 == parts.size()) return;
    dir += (dir.size() > 1 ? "/" : "") + parts[i];
  }
}

void BinaryWatch::Rescan(std::vector<FoundBinary>& added, std::vector<FoundBinary>& gone) {
  std::set<int> wds;
  for (const auto& c : candidates_) WatchAncestors(c.path, wds);
  for (int wd : wds_)
    if (!wds.count(wd)) inotify_rm_watch(fd_, wd);
  wds_ = std::move(wds);

  std::map<InodeKey, FoundBinary> now;
  for (const auto& c : candidates_) {
    struct stat st;
    if (stat(c.path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    InodeKey key = StatKey(st);
    if (now.count(key)) continue;
    auto known = found_.find(key);
    if (known != found_.end()) {
      if (known->second.runtime.empty()) {
        known->second.foundAt = c.path;
        known->second.runtime = c.runtime;
      }
      now.insert(*known);
      found_.erase(known);
      continue;
    }
    // Marked through this fd, so what is marked is what was looked at.
    int fd = open(c.path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) continue;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || StatKey(st) != key) {
      close(fd);  // replaced again meanwhile: the event for that is queued
      continue;
    }
    char real[PATH_MAX];
    std::string path = realpath(c.path.c_str(), real) ? std::string(real) : c.path;
    FoundBinary b{RuntimeBinary{path, c.kind, key, InodeKey{}}, c.path, c.runtime, fd};
    now[key] = b;
    added.push_back(b);
  }
  for (auto& [key, b] : found_) gone.push_back(b);
  found_ = std::move(now);
}

void BinaryWatch::Close() {
  for (auto& [key, b] : found_) close(b.fd);
  found_.clear();
  learned_.clear();
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

}  // namespace ocinotify
