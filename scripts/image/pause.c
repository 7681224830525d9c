/*
 * The pod sandbox's process for containerd's CRI (its sandbox_image), which cannot
 * pull the upstream pause image here. It holds the pod's namespaces open and does
 * nothing else: every signal is blocked but SIGINT and SIGTERM (exit 0, so that
 * stopping the sandbox is quick and clean) and SIGCHLD (children re-parented to it,
 * as the pid namespace's init, are reaped so that no zombie piles up).
 * Built static by scripts/image/build.sh, so the image holds this one file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

static int handle(int sig, void (*fn)(int)) {
  struct sigaction sa = {0};
  sa.sa_handler = fn;
  sa.sa_flags = SA_RESTART | (sig == SIGCHLD ? SA_NOCLDSTOP : 0);
  sigfillset(&sa.sa_mask);
  return sigaction(sig, &sa, NULL);
}

int main(void) {
  sigset_t all, wait_mask;
  sigfillset(&all);
  /* Blocked outside sigsuspend: a signal arriving between two waits is kept, not lost. */
  if (sigprocmask(SIG_BLOCK, &all, NULL) != 0) return 1;
  if (handle(SIGINT, on_stop) != 0 || handle(SIGTERM, on_stop) != 0 || handle(SIGCHLD, on_child) != 0) return 1;
  /* Children that exited before the handler was in place. */
  on_child(SIGCHLD);
  sigfillset(&wait_mask);
  sigdelset(&wait_mask, SIGINT);
  sigdelset(&wait_mask, SIGTERM);
  sigdelset(&wait_mask, SIGCHLD);
  for (;;) sigsuspend(&wait_mask);
}
