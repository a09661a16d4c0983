// The cost every other process on the node pays: fork + exec + wait of a
// trivial program, N times. Prints the elapsed CLOCK_MONOTONIC ns and the CPU
// ns (user + system) of this process and its children: the eBPF programs run
// in the forking and exec'ing tasks, so their cost is in the second number,
// which other load on the machine disturbs far less than the first.
//
//   execloop N PATH
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long cpu_ns(int who) {
  struct rusage ru;
  getrusage(who, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: execloop N PATH\n");
    return 2;
  }
  long n = atol(argv[1]);
  char *const args[] = {argv[2], NULL};
  struct timespec a, b;
  long long cpu0 = cpu_ns(RUSAGE_SELF);
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      execv(argv[2], args);
      _exit(127);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || status != 0) {
      fprintf(stderr, "execloop: %s failed at %ld\n", argv[2], i);
      return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  long long cpu = cpu_ns(RUSAGE_SELF) - cpu0 + cpu_ns(RUSAGE_CHILDREN);
  printf("%lld %lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec), cpu);
  return 0;
}
