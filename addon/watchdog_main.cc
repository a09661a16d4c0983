// ocinotify-watchdog: answers a stalled watcher's runtime execs (watchdog_shared.h).
//
//   ocinotify-watchdog --fd N         spawned by the watcher (addon/watchdog_link.cc): N is its socket
//   ocinotify-watchdog --listen PATH  a sidecar outside the watcher's cgroup: serves each watcher
//                                     that connects to the unix socket PATH
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "watchdog_serve.h"

namespace {

// A terminal's signals are the watcher's business: Ctrl-Z stopping us with it is the
// freeze we exist to outlive. SIGPIPE: a watcher gone mid-message is seen on its pidfd.
void IgnoreTerminalSignals() {
  for (int sig : {SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGHUP, SIGPIPE}) signal(sig, SIG_IGN);
}

int Listen(const char* path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(addr.sun_path)) return 2;
  strcpy(addr.sun_path, path);
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  unlink(path);
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      chmod(path, 0600) != 0 || listen(listener, 8) != 0) {
    perror(path);
    return 1;
  }
  signal(SIGCHLD, SIG_IGN);  // each served watcher's process is reaped by the kernel
  for (;;) {
    int conn = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    // One process per watcher: its copy of the group goes the moment its watcher does.
    if (fork() == 0) {
      close(listener);
      _exit(ocinotify::wd::Serve(conn));
    }
    close(conn);
  }
}

}  // namespace

int main(int argc, char** argv) {
  IgnoreTerminalSignals();
  if (argc == 3 && strcmp(argv[1], "--fd") == 0) _exit(ocinotify::wd::Serve(atoi(argv[2])));
  if (argc == 3 && strcmp(argv[1], "--listen") == 0) return Listen(argv[2]);
  fprintf(stderr, "usage: ocinotify-watchdog --fd N | --listen PATH\n");
  return 2;
}
