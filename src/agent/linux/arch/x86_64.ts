/**
 * x86-64 specifics: syscall numbers. Register layouts for syscall injection live
 * beside them (replay). Another architecture = another module of the same shape.
 */
export const SYS = {
  read: 0,
  write: 1,
  open: 2,
  close: 3,
  lseek: 8,
  mmap: 9,
  munmap: 11,
  mprotect: 10,
  ioctl: 16,
  pipe2: 293,
  dup2: 33,
  dup3: 292,
  fcntl: 72,
  kill: 62,
  tee: 276,
  splice: 275,
  kcmp: 312,
  pidfd_open: 434,
  pidfd_getfd: 438,
  openat: 257,
  eventfd2: 290,
  signalfd4: 289,
  timerfd_create: 283,
  timerfd_settime: 286,
  memfd_create: 319,
  socket: 41,
  bind: 49,
  listen: 50,
  setsockopt: 54,
  unlink: 87,
  ftruncate: 77,
  epoll_create1: 291,
  epoll_ctl: 233,
  close_range: 436,
  exit_group: 231,
  getpid: 39,
} as const;

export type SyscallName = keyof typeof SYS;
