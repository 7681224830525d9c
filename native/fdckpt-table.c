/*
 * Capture's per-process read (src/agent/linux/fdtable.ts): every fd of one
 * process in one call — its /proc link, its fdinfo text, and through a
 * pidfd_getfd copy its fstat, F_GETFL and owner (F_GETOWN_EX, F_GETSIG) — so
 * that JS makes one FFI call per process instead of six or seven per fd
 * (bench/RESULTS.md, issue 14). The kernel work is the same as before; what
 * goes is the per-call cost of the FFI and its error paths, and the second core
 * takes half of it.
 *
 * fdckpt_fd_table(fd_dir, info_dir, pidfd, skip_mnt, nskip, flags, start_fd, threads, max_fds,
 *                 buf, cap)
 * fd_dir and info_dir are open /proc/PID/fd and /proc/PID/fdinfo directories,
 * pidfd a pidfd of PID. The fds >= start_fd are listed, then split in `threads`
 * contiguous shares read in parallel (the kernel's per-fd work is most of the cost,
 * and it scales on a second core: bench/RESULTS.md), each into its own region of buf.
 * An fd whose fdinfo names a mount in skip_mnt (FUSE: fstat, and even the close of a
 * copy, would ask its server, maybe a frozen process of the pod) is read from /proc
 * only: no copy is taken.
 *
 * buf begins with a segment table, MAX_THREADS entries of 16 bytes: u64 offset of the
 * share's records in buf, u32 their bytes, i32 the first fd its region had no room for
 * (-1: the share is complete). Records are packed, little-endian (x86-64), each
 * RECORD_HEAD bytes:
 *   i32 fd, i32 link_len (< 0: -errno of readlinkat),
 *   i32 info_len (< 0: -errno; INFO_TOO_LONG: longer than INFO_MAX, read it apart),
 *   i32 copy (>= 0: the copy, left open for the caller; COPY_CLOSED: taken and
 *   closed; COPY_SKIPPED: on a skipped mount; else -errno of pidfd_getfd),
 *   i32 stat_err (0, or -errno of fstat), i32 getfl (F_GETFL, or -errno),
 *   i32 own_type, i32 own_pid (-errno of F_GETOWN_EX in own_type when it failed;
 *   own_pid 0: no owner, or not asked), i32 own_sig (F_GETSIG, or -errno),
 *   u32 mode, u32 nlink, i32 mnt_id (-1 when fdinfo has none),
 *   u64 dev, u64 ino, u64 rdev, i64 size,
 *   i64 pos, i64 fdinfo_ino (-1: no ino line), u32 fdinfo_flags, i32 common,
 * then link_len link bytes and info_len fdinfo bytes. When common is 1, fdinfo began
 * with the lines every file has (pos, flags, mnt_id and, from Linux 5.14, ino), their
 * values are in the record, and the fdinfo bytes are only the lines after them (for
 * a regular file: none); when 0, the bytes are the whole text, for the caller to parse.
 * The copy is closed here (COPY_CLOSED) unless flags has KEEP_COPIES or the file is one
 * whose type reads more through it: only regular files, directories and devices whose
 * link is a path other than a memfd's are closed. One call reads at most max_fds fds (0:
 * no bound), so that the copies it leaves open stay below what the caller allows (a
 * table of 19k pipes would otherwise hold 19k copies at once, near RLIMIT_NOFILE); the
 * last share's next fd says where the next call starts. When a share's region fills, the
 * caller keeps the shares before it and the records of that share, closes the copies
 * of the records after, and calls again from that share's next fd. Returns the
 * number of shares (threads used), -EINVAL when the buffer holds less than one largest
 * record per share or threads is out of range, -errno when the directory cannot be read.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RECORD_HEAD 104
#define INFO_MAX 16384
#define MAX_RECORD (RECORD_HEAD + PATH_MAX + INFO_MAX)
#define MAX_THREADS 8
/* Per thread: u64 offset, u32 bytes, i32 next fd; MAX_THREADS of them. */
#define SEGMENT_TABLE (16 * MAX_THREADS)
#define THREAD_MIN_FDS 512
/* The kernel's fs.nr_open ceiling. */
#define MAX_FDS (1 << 20)
#define KEEP_COPIES 1
#define INFO_TOO_LONG (-1000000)
#define COPY_CLOSED (-1000001)
#define COPY_SKIPPED (-1000002)

long fdckpt_fd_table(int fd_dir, int info_dir, int pidfd, const int32_t *skip_mnt, int32_t nskip,
                     int32_t flags, int32_t start_fd, int32_t threads, int32_t max_fds, uint8_t *buf,
                     size_t cap);

static void put32(uint8_t *rec, int slot, int32_t v) { memcpy(rec + 4 * slot, &v, 4); }
static void put64(uint8_t *rec, int at, uint64_t v) { memcpy(rec + at, &v, 8); }

/* The fdinfo lines every file starts with, parsed. */
struct common_lines {
  int64_t pos;
  int64_t ino;
  uint32_t flags;
  int32_t mnt_id;
  /* Bytes the lines take (0: the text does not start with them). */
  ssize_t len;
};

/* Parses `KEY:` then blanks then digits (base 8 or 10) and the newline at *at; 0 when it is not there. */
static int number_line(const char *t, ssize_t n, ssize_t *at, const char *key, int base, int64_t *out) {
  size_t k = strlen(key);
  ssize_t i = *at;
  if (i + (ssize_t)k > n || memcmp(t + i, key, k) != 0) return 0;
  i += (ssize_t)k;
  while (i < n && (t[i] == ' ' || t[i] == '\t')) i++;
  int64_t v = 0;
  ssize_t digits = i;
  while (i < n && t[i] >= '0' && t[i] < '0' + base) v = v * base + (t[i++] - '0');
  if (i == digits || i >= n || t[i] != '\n' || i - digits > 18) return 0;
  *out = v;
  *at = i + 1;
  return 1;
}

/* fdinfo's `mnt_id:` line anywhere, or -1: for a text that does not start as expected. */
static int32_t mnt_id_anywhere(const char *t, ssize_t n) {
  for (ssize_t i = 0; i < n; i++) {
    if (i > 0 && t[i - 1] != '\n') continue;
    ssize_t at = i;
    int64_t v;
    if (number_line(t, n, &at, "mnt_id:", 10, &v)) return (int32_t)v;
  }
  return -1;
}

static struct common_lines parse_common(const char *t, ssize_t n) {
  struct common_lines c = {0, -1, 0, -1, 0};
  ssize_t at = 0;
  int64_t flags, mnt;
  if (!number_line(t, n, &at, "pos:", 10, &c.pos) || !number_line(t, n, &at, "flags:", 8, &flags) ||
      !number_line(t, n, &at, "mnt_id:", 10, &mnt))
    return (struct common_lines){0, -1, 0, -1, 0};
  c.flags = (uint32_t)flags;
  c.mnt_id = (int32_t)mnt;
  number_line(t, n, &at, "ino:", 10, &c.ino); /* absent before Linux 5.14 */
  c.len = at;
  return c;
}

/* Reads fdinfo NAME of info_dir into out (at most INFO_MAX bytes): its length, or < 0. */
static ssize_t read_info(int info_dir, const char *name, char *out) {
  int f = openat(info_dir, name, O_RDONLY | O_CLOEXEC);
  if (f < 0) return -errno;
  ssize_t len = 0;
  for (;;) {
    if (len == INFO_MAX) {
      char probe;
      ssize_t more = read(f, &probe, 1);
      close(f);
      return more == 0 ? len : INFO_TOO_LONG;
    }
    ssize_t n = read(f, out + len, INFO_MAX - len);
    if (n < 0) {
      int e = errno;
      close(f);
      return -e;
    }
    if (n == 0) break;
    len += n;
  }
  close(f);
  return len;
}

static int skipped(int32_t mnt, const int32_t *skip_mnt, int32_t nskip) {
  for (int32_t i = 0; i < nskip; i++)
    if (skip_mnt[i] == mnt) return 1;
  return 0;
}

/* Whether capture needs nothing more of this file than what is recorded here. */
static int done_with(const struct stat *st, const char *link, ssize_t link_len) {
  mode_t t = st->st_mode & S_IFMT;
  if (t != S_IFREG && t != S_IFDIR && t != S_IFCHR && t != S_IFBLK) return 0;
  if (link_len < 1 || link[0] != '/') return 0;
  return !(link_len >= 7 && memcmp(link, "/memfd:", 7) == 0);
}

/* Fills one record for fd NAME at rec; returns its size. */
static size_t one_fd(int fd_dir, int info_dir, int pidfd, const int32_t *skip_mnt, int32_t nskip,
                     int32_t flags, int32_t fd, const char *name, uint8_t *rec) {
  memset(rec, 0, RECORD_HEAD);
  char *link = (char *)rec + RECORD_HEAD;
  ssize_t link_len = readlinkat(fd_dir, name, link, PATH_MAX);
  if (link_len < 0) link_len = -errno;
  char *info = link + (link_len > 0 ? link_len : 0);
  ssize_t info_len = read_info(info_dir, name, info);
  /* Too long for the record (epoll targets, locks): its first INFO_MAX bytes still name the mount. */
  ssize_t parsed = info_len == INFO_TOO_LONG ? INFO_MAX : info_len;
  struct common_lines common = parsed > 0 ? parse_common(info, parsed) : (struct common_lines){0, -1, 0, -1, 0};
  int32_t mnt = common.len > 0 ? common.mnt_id : parsed > 0 ? mnt_id_anywhere(info, parsed) : -1;
  if (info_len > 0 && common.len > 0) {
    /* Only the lines after the common ones are passed on. */
    memmove(info, info + common.len, (size_t)(info_len - common.len));
    info_len -= common.len;
    put64(rec, 80, (uint64_t)common.pos);
    put64(rec, 88, (uint64_t)common.ino);
    put32(rec, 24, (int32_t)common.flags);
    put32(rec, 25, 1);
  }
  put32(rec, 0, fd);
  put32(rec, 1, (int32_t)link_len);
  put32(rec, 2, (int32_t)info_len);
  put32(rec, 11, mnt);
  int32_t copy;
  if (link_len < 0 || (info_len < 0 && info_len != INFO_TOO_LONG)) {
    copy = COPY_CLOSED; /* the caller reports the read that failed */
  } else if (mnt >= 0 && skipped(mnt, skip_mnt, nskip)) {
    copy = COPY_SKIPPED;
  } else {
    int c = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    copy = c < 0 ? -errno : c;
  }
  if (copy >= 0) {
    struct stat st;
    int have_stat = fstat(copy, &st) == 0;
    if (!have_stat) {
      put32(rec, 4, -errno);
    } else {
      put32(rec, 9, (int32_t)st.st_mode);
      put32(rec, 10, (int32_t)st.st_nlink);
      put64(rec, 48, st.st_dev);
      put64(rec, 56, st.st_ino);
      put64(rec, 64, st.st_rdev);
      put64(rec, 72, (uint64_t)st.st_size);
    }
    int fl = fcntl(copy, F_GETFL);
    put32(rec, 5, fl < 0 ? -errno : fl);
    /* O_PATH files cannot have an owner, and F_GETOWN_EX refuses them (EBADF). */
    if (fl >= 0 && !(fl & O_PATH)) {
      struct f_owner_ex own;
      if (fcntl(copy, F_GETOWN_EX, &own) < 0) {
        put32(rec, 6, -errno);
      } else {
        put32(rec, 6, own.type);
        put32(rec, 7, own.pid);
        if (own.pid != 0) {
          int sig = fcntl(copy, F_GETSIG);
          put32(rec, 8, sig < 0 ? -errno : sig);
        }
      }
    }
    if (!(flags & KEEP_COPIES) && have_stat && done_with(&st, link, link_len)) {
      close(copy);
      copy = COPY_CLOSED;
    }
  }
  put32(rec, 3, copy);
  return RECORD_HEAD + (link_len > 0 ? (size_t)link_len : 0) + (info_len > 0 ? (size_t)info_len : 0);
}

/* One thread's share of the table: fds[from, to) into its region of the buffer. */
struct share {
  int fd_dir, info_dir, pidfd, nskip, flags;
  const int32_t *skip_mnt;
  const int32_t *fds;
  size_t from, to;
  uint8_t *region;
  size_t cap;
  /* Out: bytes written, and the first fd not reached (-1: all done). */
  size_t used;
  int32_t next;
};

static void *run_share(void *arg) {
  struct share *w = arg;
  char name[16];
  w->used = 0;
  w->next = -1;
  for (size_t i = w->from; i < w->to; i++) {
    if (w->used + MAX_RECORD > w->cap) {
      w->next = w->fds[i];
      break;
    }
    snprintf(name, sizeof name, "%d", w->fds[i]);
    w->used += one_fd(w->fd_dir, w->info_dir, w->pidfd, w->skip_mnt, w->nskip, w->flags, w->fds[i], name,
                      w->region + w->used);
  }
  return NULL;
}

static int by_number(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* The fd numbers >= start_fd in fd_dir, ascending, in a malloc'd array; -errno on failure. */
static long list_fds(int fd_dir, int32_t start_fd, int32_t **out) {
  if (lseek(fd_dir, 0, SEEK_SET) < 0) return -errno;
  _Alignas(8) char dents[16384];
  size_t n = 0, room = 1024;
  int32_t *fds = malloc(room * sizeof *fds);
  if (!fds) return -ENOMEM;
  for (;;) {
    long got = syscall(SYS_getdents64, fd_dir, dents, sizeof dents);
    if (got < 0) {
      int e = errno;
      free(fds);
      return -e;
    }
    if (got == 0) break;
    for (long pos = 0; pos < got;) {
      struct dirent64 *de = (struct dirent64 *)(dents + pos);
      pos += de->d_reclen;
      if (de->d_name[0] < '0' || de->d_name[0] > '9') continue;
      int32_t fd = 0;
      for (const char *p = de->d_name; *p; p++) fd = fd * 10 + (*p - '0');
      if (fd < start_fd) continue;
      if (n == room) {
        if (room >= MAX_FDS) {
          free(fds);
          return -E2BIG;
        }
        int32_t *more = realloc(fds, 2 * room * sizeof *fds);
        if (!more) {
          free(fds);
          return -ENOMEM;
        }
        fds = more;
        room *= 2;
      }
      fds[n++] = fd;
    }
  }
  qsort(fds, n, sizeof *fds, by_number);
  *out = fds;
  return (long)n;
}

long fdckpt_fd_table(int fd_dir, int info_dir, int pidfd, const int32_t *skip_mnt, int32_t nskip,
                     int32_t flags, int32_t start_fd, int32_t threads, int32_t max_fds, uint8_t *buf,
                     size_t cap) {
  if (threads < 1 || threads > MAX_THREADS) return -EINVAL;
  int32_t *fds = NULL;
  long n = list_fds(fd_dir, start_fd, &fds);
  if (n < 0) return n;
  /* At most max_fds this call: the first fd left out is where the next one starts. */
  int32_t rest = -1;
  if (max_fds > 0 && n > max_fds) {
    rest = fds[max_fds];
    n = max_fds;
  }
  /* Small tables are not worth a thread. */
  if (n < THREAD_MIN_FDS * threads) threads = 1;
  size_t region = ((cap - SEGMENT_TABLE) / (size_t)threads) & ~(size_t)7;
  if (cap < SEGMENT_TABLE || region < MAX_RECORD) {
    free(fds);
    return -EINVAL;
  }
  struct share w[MAX_THREADS];
  pthread_t tid[MAX_THREADS];
  int started[MAX_THREADS] = {0};
  for (int t = 0; t < threads; t++) {
    w[t] = (struct share){fd_dir, info_dir, pidfd, nskip, flags, skip_mnt, fds,
                          (size_t)n * t / threads, (size_t)n * (t + 1) / threads,
                          buf + SEGMENT_TABLE + region * t, region, 0, -1};
    /* The caller's thread takes the first share; a thread that cannot start is run here. */
    if (t > 0 && pthread_create(&tid[t], NULL, run_share, &w[t]) == 0) started[t] = 1;
  }
  run_share(&w[0]);
  for (int t = 1; t < threads; t++) {
    if (started[t])
      pthread_join(tid[t], NULL);
    else
      run_share(&w[t]);
  }
  free(fds);
  if (w[threads - 1].next < 0) w[threads - 1].next = rest;
  memset(buf, 0, SEGMENT_TABLE);
  for (int t = 0; t < threads; t++) {
    uint64_t off = SEGMENT_TABLE + region * t, used = w[t].used;
    memcpy(buf + 16 * t, &off, 8);
    memcpy(buf + 16 * t + 8, &used, 4);
    memcpy(buf + 16 * t + 12, &w[t].next, 4);
  }
  return threads;
}

/*
 * Replay's validation of the files it reopens by path (src/agent/linux/pathstat.ts):
 * for each of n NUL-terminated paths packed in `paths`, lstat then stat, each written
 * to out as 32 bytes: i32 err (0, or errno; with STAT_FAILED_FSTAT set when the fstat
 * after a successful open failed), u32 mode, i64 size, u64 dev, u64 ino. With root_fd
 * >= 0 the paths resolve inside that root, as the target will open them: openat2
 * (O_PATH, RESOLVE_IN_ROOT; O_NOFOLLOW for the lstat) and fstat. One call for a table
 * instead of two to six FFI calls per file. Returns n, or -EINVAL.
 */
#define STAT_FAILED_FSTAT 0x40000000
#define STAT_OUT 32
#ifndef RESOLVE_IN_ROOT
#define RESOLVE_IN_ROOT 0x10
#endif

long fdckpt_stat_paths(int root_fd, const uint8_t *paths, size_t len, int32_t n, uint8_t *out);

static void put_stat(uint8_t *o, int32_t err, const struct stat *st) {
  memset(o, 0, STAT_OUT);
  memcpy(o, &err, 4);
  if (err != 0) return;
  uint32_t mode = st->st_mode;
  int64_t size = st->st_size;
  uint64_t dev = st->st_dev, ino = st->st_ino;
  memcpy(o + 4, &mode, 4);
  memcpy(o + 8, &size, 8);
  memcpy(o + 16, &dev, 8);
  memcpy(o + 24, &ino, 8);
}

struct open_how_v0 {
  uint64_t flags, mode, resolve;
};

static void stat_in_root(int root_fd, const char *path, int follow, uint8_t *o) {
  struct open_how_v0 how = {O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW), 0, RESOLVE_IN_ROOT};
  struct stat st;
  int fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
  if (fd < 0) {
    put_stat(o, errno, &st);
    return;
  }
  int err = fstat(fd, &st) < 0 ? (errno | STAT_FAILED_FSTAT) : 0;
  close(fd);
  put_stat(o, err, &st);
}

long fdckpt_stat_paths(int root_fd, const uint8_t *paths, size_t len, int32_t n, uint8_t *out) {
  size_t at = 0;
  for (int32_t i = 0; i < n; i++) {
    if (at >= len) return -EINVAL;
    const char *path = (const char *)paths + at;
    const void *nul = memchr(path, 0, len - at);
    if (nul == NULL) return -EINVAL;
    at = (size_t)((const uint8_t *)nul - paths) + 1;
    uint8_t *o = out + (size_t)i * 2 * STAT_OUT;
    if (root_fd >= 0) {
      stat_in_root(root_fd, path, 0, o);
      stat_in_root(root_fd, path, 1, o + STAT_OUT);
    } else {
      struct stat st;
      put_stat(o, lstat(path, &st) < 0 ? errno : 0, &st);
      put_stat(o + STAT_OUT, stat(path, &st) < 0 ? errno : 0, &st);
    }
  }
  return n;
}
