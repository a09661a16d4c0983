// Reads a file the way a runtime would see it, without letting a hostile
// bundle take us elsewhere: the directory is resolved inside root (symlinks
// re-rooted, no /proc magic links), the file must stay beneath that directory,
// must be a regular file (a FIFO would block us) and at most maxBytes long.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ocinotify {

// openat2(2) (Linux 5.6): an fd, or -1 with errno set.
int OpenAt2(int dirfd, const char* path, uint64_t flags, uint64_t resolve);

// On failure returns false and sets code to an errno name or ENOTREG/EFBIG.
bool ReadFileInRoot(const std::string& root, const std::string& path, size_t maxBytes,
                    std::vector<char>& out, std::string& code);

}  // namespace ocinotify
