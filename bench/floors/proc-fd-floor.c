/*
 * The kernel's floor under `fdckpt leaks`' host scan (issue 14): list /proc/PID/fd and
 * readlink every fd of every process, nothing else, on THREADS processes that split the
 * pids between them (pid i goes to worker i % THREADS). Prints the fds seen and the time.
 *
 *   cc -O2 -o /tmp/proc-fd-floor bench/floors/proc-fd-floor.c
 *   /tmp/proc-fd-floor 1; /tmp/proc-fd-floor 2
 *
 * MODE "readdir" lists the directories only (no readlink), to split the floor in two.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long scan(int worker, int threads, int links) {
  long fds = 0;
  int k = 0;
  char path[300], buf[4096];
  DIR *proc = opendir("/proc");
  struct dirent *e;
  while (proc && (e = readdir(proc))) {
    if (!isdigit((unsigned char)e->d_name[0]) || k++ % threads != worker) continue;
    snprintf(path, sizeof path, "/proc/%s/fd", e->d_name);
    int dfd = open(path, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) continue;
    DIR *d = fdopendir(dfd);
    struct dirent *f;
    while (d && (f = readdir(d))) {
      if (f->d_name[0] == '.') continue;
      if (links && readlinkat(dfd, f->d_name, buf, sizeof buf) < 0) continue;
      fds++;
    }
    if (d) closedir(d);
  }
  return fds;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  int links = !(argc > 2 && strcmp(argv[2], "readdir") == 0);
  int pipes[64][2];
  struct timespec a, b;
  if (threads < 1 || threads > 64) return 2;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int t = 0; t < threads; t++) {
    if (pipe(pipes[t]) != 0) return 1;
    if (fork() == 0) {
      long n = scan(t, threads, links);
      if (write(pipes[t][1], &n, sizeof n) != sizeof n) _exit(1);
      _exit(0);
    }
  }
  long total = 0;
  for (int t = 0; t < threads; t++) {
    long n = 0;
    if (read(pipes[t][0], &n, sizeof n) == sizeof n) total += n;
  }
  while (wait(NULL) > 0) {
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%s, %d thread(s): %ld fds in %.1f ms\n", links ? "readdir+readlink" : "readdir", threads, total,
         (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
  return 0;
}
