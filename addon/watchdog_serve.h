// The watchdog process's work (addon/watchdog_main.cc): one watcher served over a socket.
#pragma once

namespace ocinotify::wd {

// Receives over sock (a unix stream socket) the watcher's fanotify group, the memory it
// shares (watchdog_shared.h) and a pidfd of the watcher's process; stands in for its
// reactor whenever the reactor stalls. When the watcher goes (its reactor thread dies, or the
// socket closes), it allows everything until the watcher's process is gone, then returns the
// process's exit status.
int Serve(int sock);

}  // namespace ocinotify::wd
