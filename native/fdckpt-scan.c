/*
 * The host scan's per-process read (src/agent/linux/hostfd.ts): lists an open
 * /proc/PID/fd directory and reads every link in one call, so that JS makes
 * one FFI call per process instead of one per fd (bench/RESULTS.md, issue 14).
 *
 * fdckpt_fd_links(dirfd, buf, cap) writes packed records, native-endian:
 * int32 fd, int32 n, then n link bytes when n >= 0; n < 0 is -errno of
 * readlinkat (the fd was closed meanwhile, or may not be read). The end of the
 * directory is a record with fd -1. When the buffer fills first, the call
 * returns without an end record and leaves dirfd's offset at the first fd not
 * written, so the next call goes on from there: a table of any size is read in
 * a bounded buffer. Returns the bytes written, -EINVAL when cap is below one
 * longest record and the end record, -errno when the directory cannot be read
 * and nothing was written.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* One record of the longest link the kernel gives (readlink truncates to the buffer). */
#define MAX_RECORD (8 + PATH_MAX)
#define END_RECORD 8

long fdckpt_fd_links(int dirfd, uint8_t *buf, size_t cap);

static void put_record(uint8_t *at, int32_t fd, int32_t n) {
  memcpy(at, &fd, 4);
  memcpy(at + 4, &n, 4);
}

long fdckpt_fd_links(int dirfd, uint8_t *buf, size_t cap) {
  if (cap < MAX_RECORD + END_RECORD) return -EINVAL;
  /* Aligned for struct linux_dirent64; getdents64 needs no glibc wrapper this way. */
  _Alignas(8) char dents[16384];
  size_t used = 0;
  for (;;) {
    off_t batch = lseek(dirfd, 0, SEEK_CUR);
    long got = syscall(SYS_getdents64, dirfd, dents, sizeof dents);
    if (got < 0) return used > 0 ? (long)used : -errno;
    if (got == 0) {
      put_record(buf + used, -1, 0);
      return (long)(used + END_RECORD);
    }
    off_t resume = batch; /* where the first entry not written starts */
    for (long pos = 0; pos < got;) {
      struct dirent64 *de = (struct dirent64 *)(dents + pos);
      pos += de->d_reclen;
      const char *name = de->d_name;
      if (name[0] >= '0' && name[0] <= '9') {
        if (used + MAX_RECORD + END_RECORD > cap) {
          /* Full: the next call starts at this fd. */
          if (lseek(dirfd, resume, SEEK_SET) < 0) return -errno;
          return (long)used;
        }
        int32_t fd = 0;
        for (const char *p = name; *p; p++) fd = fd * 10 + (*p - '0');
        ssize_t n = readlinkat(dirfd, name, (char *)buf + used + 8, PATH_MAX);
        put_record(buf + used, fd, n < 0 ? -errno : (int32_t)n);
        used += 8 + (n > 0 ? (size_t)n : 0);
      }
      resume = de->d_off;
    }
  }
}
