// One container creator, as an orchestrator would be: runs runc for each
// container of a list, one after another, and prints when each step ended
// (CLOCK_MONOTONIC ns, the clock of the watcher's monotonicNs).
//
//   creator RUNC STATE_ROOT lifecycle|run LIST LOG
//
// LIST holds "id bundle" lines. lifecycle: runc create (with the flags a
// containerd shim passes), runc start, wait for the container's init to exit,
// runc delete; we are the inits' subreaper (as a shim is), so waitpid() tells
// the init's pid and status.
// Prints "id t0 created started exited deleted initpid status".
// run: runc run in the foreground (runc waits for the init and deletes the
// container). Prints "id t0 0 0 exited exited 0 status".
// A step that fails prints "id FAIL step status" and moves on.
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *runc, *state_root;
static int null_fd, log_fd;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

// runc --root STATE_ROOT args...; returns its wait status.
// The strings are copied to the stack first, as orchestrators build argv in writable
// memory: a fork child has the parent's read-only data (string literals) unmapped until it
// faults it in, and eBPF programs (ours, bpftrace's) read argv at sys_enter_execve without
// faulting, so literals would reach them as an argv cut short.
static int runc_do(const char *const *args) {
  const char *in[16] = {runc, "--root", state_root};
  int n = 3;
  for (; *args && n < 15; args++) in[n++] = *args;
  char buf[16384], *argv[16];
  size_t used = 0;
  for (int i = 0; i < n; i++) {
    size_t len = strlen(in[i]) + 1;
    if (used + len > sizeof(buf)) return -1;
    argv[i] = memcpy(buf + used, in[i], len);
    used += len;
  }
  argv[n] = NULL;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(null_fd, 0);
    dup2(null_fd, 1);
    dup2(log_fd, 2);
    execv(runc, argv);
    _exit(127);
  }
  int status = -1;
  if (pid > 0) waitpid(pid, &status, 0);
  return status;
}

static void lifecycle(const char *id, const char *bundle) {
  // The argv a containerd shim gives runc: a JSON log and a pid file in the bundle.
  char log[4200], pid_file[4200];
  snprintf(log, sizeof(log), "%s/log.json", bundle);
  snprintf(pid_file, sizeof(pid_file), "%s/init.pid", bundle);
  uint64_t t0 = now_ns();
  int st = runc_do(
      (const char *[]){"--log", log, "--log-format", "json", "create", "--bundle", bundle, "--pid-file", pid_file, id, NULL});
  uint64_t created = now_ns();
  if (st != 0) {
    printf("%s FAIL create %d\n", id, st);
    return;
  }
  st = runc_do((const char *[]){"start", id, NULL});
  uint64_t started = now_ns();
  if (st != 0) {
    printf("%s FAIL start %d\n", id, st);
    runc_do((const char *[]){"delete", "--force", id, NULL});
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
    return;
  }
  // Every runc we ran has been waited for: the only child left is the init.
  int init_status = -1;
  pid_t init = waitpid(-1, &init_status, 0);
  uint64_t exited = now_ns();
  st = runc_do((const char *[]){"delete", id, NULL});
  uint64_t deleted = now_ns();
  if (st != 0) printf("%s FAIL delete %d\n", id, st);
  printf("%s %llu %llu %llu %llu %llu %d %d\n", id, (unsigned long long)t0, (unsigned long long)created,
         (unsigned long long)started, (unsigned long long)exited, (unsigned long long)deleted, (int)init,
         init_status);
}

static void run(const char *id, const char *bundle) {
  uint64_t t0 = now_ns();
  int st = runc_do((const char *[]){"run", "--bundle", bundle, id, NULL});
  uint64_t done = now_ns();
  if (st < 0 || !WIFEXITED(st)) {
    printf("%s FAIL run %d\n", id, st);
    return;
  }
  printf("%s %llu 0 0 %llu %llu 0 %d\n", id, (unsigned long long)t0, (unsigned long long)done,
         (unsigned long long)done, WEXITSTATUS(st) << 8);
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: creator RUNC STATE_ROOT lifecycle|run LIST LOG\n");
    return 2;
  }
  runc = argv[1];
  state_root = argv[2];
  int is_run = strcmp(argv[3], "run") == 0;
  FILE *list = fopen(argv[4], "r");
  null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  log_fd = open(argv[5], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (!list || null_fd < 0 || log_fd < 0) {
    perror("creator");
    return 1;
  }
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  setvbuf(stdout, NULL, _IOLBF, 0);
  char id[256], bundle[4096];
  while (fscanf(list, "%255s %4095s", id, bundle) == 2) {
    if (is_run)
      run(id, bundle);
    else
      lifecycle(id, bundle);
  }
  return 0;
}
