// Keeps the kernel's run-time statistics of BPF programs (run_cnt and
// run_time_ns, as `bpftool prog show` prints them) on for as long as this
// process lives. BPF_ENABLE_STATS holds them on through an fd, so they go
// off when we exit, however we exit - unlike the kernel.bpf_stats_enabled
// sysctl, a machine-wide setting that a crash would leave on.
//
//   bpfstats      prints "on", then waits for its stdin to close
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.enable_stats.type = BPF_STATS_RUN_TIME;
  int fd = (int)syscall(SYS_bpf, BPF_ENABLE_STATS, &attr, sizeof(attr));
  if (fd < 0) {
    perror("bpfstats: BPF_ENABLE_STATS");
    return 1;
  }
  printf("on\n");
  fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  return 0;
}
