// Shared by the hostile-input, pressure and hygiene tests: a Recorder that also keeps
// diagnostics, lost records and errors and checks every event against the documented schema,
// and two small C tools built on the spot (an exec storm and the smallest possible binary).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { ContainerEvent, DiagnosticEvent, LostEvent, WatchOptions } from '../../src/index.js';
import { containerEventProblems, diagnosticProblems, lostProblems } from '../schema.js';
import { Recorder } from '../kit/index.js';

export class Observer extends Recorder {
  readonly diagnostics: DiagnosticEvent[] = [];
  readonly lost: LostEvent[] = [];
  readonly errors: unknown[] = [];
  /** every event that did not fit the schema, with what was wrong */
  readonly invalid: { event: unknown; problems: string[] }[] = [];

  constructor(options: WatchOptions = {}) {
    super(options);
    const validate = (event: unknown, problems: string[]): void => {
      if (problems.length > 0) this.invalid.push({ event, problems });
    };
    this.watcher.on('event', (e: ContainerEvent) => validate(e, containerEventProblems(JSON.parse(JSON.stringify(e)))));
    this.watcher.on('diagnostic', (d: DiagnosticEvent) => {
      this.diagnostics.push(d);
      validate(d, diagnosticProblems(JSON.parse(JSON.stringify(d))));
    });
    this.watcher.on('lost', (l: LostEvent) => {
      this.lost.push(l);
      validate(l, lostProblems(l));
    });
    this.watcher.on('error', (err: unknown) => this.errors.push(err));
  }

  diagnosticsOf(id: string): DiagnosticEvent[] {
    return this.diagnostics.filter((d) => d.id === id);
  }

  /** Diagnostics whose runtime argv holds needle: for execs without a valid id. */
  diagnosticsWith(needle: string): DiagnosticEvent[] {
    return this.diagnostics.filter((d) => d.runtime?.argv.some((a) => a.includes(needle)));
  }

  types(id: string): string[] {
    return this.of(id).map((e) => e.type);
  }

  /** Nothing crashed, nothing left the schema. */
  expectSound(): void {
    expect(this.errors).toEqual([]);
    expect(this.invalid).toEqual([]);
  }
}

const TINY_C = `void _start(void) { __asm__ volatile("mov $60, %eax\\n xor %edi, %edi\\n syscall"); }\n`;

/**
 * storm COUNT WORKERS RATE BINARY [ARGS...]: COUNT execs over WORKERS processes, at most RATE a
 * second (0: no limit). Prints "<execs done> <seconds>" when done or on SIGTERM.
 */
const STORM_C = `#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
  if (argc < 5) return 2;
  long n = atol(argv[1]); int w = atoi(argv[2]); double rate = atof(argv[3]);
  long *done = mmap(NULL, sizeof(long), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  pid_t workers[256];
  struct sigaction sa = {0};
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  double start = now();
  for (int k = 0; k < w && k < 256; k++) {
    workers[k] = fork();
    if (workers[k] == 0) {
      signal(SIGTERM, SIG_DFL);
      for (long i = k; i < n; i += w) {
        if (rate > 0) { double due = start + i / rate, t = now(); if (due > t) usleep((useconds_t)((due - t) * 1e6)); }
        pid_t p = vfork();
        if (p == 0) { execv(argv[4], argv + 4); _exit(127); }
        int st; waitpid(p, &st, 0);
        __atomic_add_fetch(done, 1, __ATOMIC_RELAXED);
      }
      _exit(0);
    }
  }
  while (!stop && wait(NULL) > 0) {}
  if (stop) for (int k = 0; k < w && k < 256; k++) kill(workers[k], SIGKILL);
  while (wait(NULL) > 0) {}
  printf("%ld %.3f\\n", *done, now() - start);
  return 0;
}
`;

export interface Tools {
  /** a static binary that only exits: the cheapest exec there is */
  tiny: string;
  storm: string;
}

export function buildTools(dir: string): Tools {
  const tiny = join(dir, 'tiny');
  const storm = join(dir, 'storm');
  writeFileSync(`${tiny}.c`, TINY_C);
  writeFileSync(`${storm}.c`, STORM_C);
  execFileSync('gcc', ['-nostdlib', '-static', '-O2', '-o', tiny, `${tiny}.c`]);
  execFileSync('gcc', ['-O2', '-o', storm, `${storm}.c`]);
  return { tiny, storm };
}

/** Parses storm's output line: how many execs, in how many seconds. */
export function stormResult(stdout: string): { count: number; seconds: number; perSecond: number } {
  const [count, seconds] = stdout.trim().split('\n').pop()!.split(' ').map(Number) as [number, number];
  return { count, seconds, perSecond: Math.round(count / seconds) };
}

/**
 * Ids whose runtime failed, from shell loops that print `fail <id>: <runc's last log line>`.
 * This machine is shared: another tenant mounting a cgroup v1 controller makes some runc fail.
 */
export function runtimeFailures(stderr: string): Set<string> {
  const failed = new Set<string>();
  for (const line of stderr.split('\n')) {
    const id = /^fail ([^:]+):/.exec(line)?.[1];
    if (id !== undefined) failed.add(id);
  }
  return failed;
}

/** Zombie children of this process. */
export function zombieChildren(): number[] {
  const zombies: number[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z' && Number(fields[1]) === process.pid) zombies.push(Number(pid));
    } catch {
      // gone
    }
  }
  return zombies;
}
