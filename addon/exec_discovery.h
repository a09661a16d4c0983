// Runtimes found from their first exec: a runtime binary nobody named (another mount
// namespace - a kind node's -, an unlisted path, a new install) that the BPF side saw exec'd
// by real root under a runtime's name (OCI_F_BY_NAME). Its first creation teaches us its
// inode, through the process that runs it: from then on it is marked and keyed like a known
// runtime, and its later creations are held.
#pragma once
#include <cstdint>
#include <string>

#include "inode_key.h"

namespace ocinotify {

struct ExecutedBinary {
  int fd = -1;       // O_RDONLY on the inode: how it is marked; the caller closes it
  std::string path;  // as the runtime's own mount namespace names it
  InodeKey file;     // stat(2)'s key of fd (inode_key.h)
};

// Opens what procDir's process runs, if that is still the file the kernel reported (kernel,
// its key from the BPF record): the process may have exec'd again, or gone and its pid been
// reused. Once it is gone, the path it was exec'd by (absolute), through its parent's root (a
// shim: same node, still there). fd -1 when neither is that file.
ExecutedBinary OpenExecuted(KernelKeys& keys, const std::string& procDir, const std::string& parentDir,
                            const std::string& execPath, const InodeKey& kernel);

}  // namespace ocinotify
