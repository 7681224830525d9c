/*
 * The kernel's floor under a /proc-based capture (issue 14), on the given processes,
 * one after the other on one thread:
 *   proc:  list /proc/PID/fd, readlink every fd, read its /proc/PID/fdinfo file;
 *   getfd: pidfd_getfd every fd, then F_GETFL, lseek(SEEK_CUR) and fstat on the copy,
 *          and close it.
 * The two add up to what any capture that reads state through /proc and a copy of
 * the fd must ask the kernel; fdckpt's capture does both, and more for some types.
 * Prints one line: `fds N proc_ms X getfd_ms Y`.
 *
 *   cc -O2 -o /tmp/capture-floor bench/floors/capture-floor.c && /tmp/capture-floor PID...
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* readdir + readlinkat + fdinfo read; returns the fds seen. */
static long proc_pass(int pid) {
  char path[64], buf[4096], info[16384];
  snprintf(path, sizeof path, "/proc/%d/fd", pid);
  int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  snprintf(path, sizeof path, "/proc/%d/fdinfo", pid);
  int ifd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || ifd < 0) return -1;
  DIR *d = fdopendir(dfd);
  long n = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    if (readlinkat(dfd, e->d_name, buf, sizeof buf) < 0) continue;
    int f = openat(ifd, e->d_name, O_RDONLY | O_CLOEXEC);
    if (f < 0) continue;
    while (read(f, info, sizeof info) > 0) {
    }
    close(f);
    n++;
  }
  if (d) closedir(d);
  close(ifd);
  return n;
}

/* pidfd_getfd + F_GETFL + lseek + fstat + close of every fd listed. */
static long getfd_pass(int pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", pid);
  DIR *d = opendir(path);
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (!d || pidfd < 0) return -1;
  long n = 0;
  struct dirent *e;
  struct stat st;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    int c = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(e->d_name), 0);
    if (c < 0) continue;
    (void)fcntl(c, F_GETFL);
    (void)lseek(c, 0, SEEK_CUR);
    (void)fstat(c, &st);
    close(c);
    n++;
  }
  closedir(d);
  close(pidfd);
  return n;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PID...\n", argv[0]);
    return 2;
  }
  long fds = 0;
  double t0 = now_ms();
  for (int i = 1; i < argc; i++) {
    long n = proc_pass(atoi(argv[i]));
    if (n < 0) return 1;
    fds += n;
  }
  double t1 = now_ms();
  for (int i = 1; i < argc; i++)
    if (getfd_pass(atoi(argv[i])) < 0) return 1;
  double t2 = now_ms();
  printf("fds %ld proc_ms %.2f getfd_ms %.2f\n", fds, t1 - t0, t2 - t1);
  return 0;
}
