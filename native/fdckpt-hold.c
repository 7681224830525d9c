/*
 * fdckpt-hold: the launcher that replay restores a file table into.
 *
 *   fdckpt-hold [--timeout SECONDS] [--listen-fds] [--exec FILE] -- CMD [ARGS...]
 *
 * It forks. The child (the "held" process) blocks until SIGUSR1 arrives (or the
 * timeout passes: exit 125), then execs CMD; the restorer, which has seized the
 * child with PTRACE_O_TRACEEXEC, replays the table at the exec stop. The parent
 * (the "waiter") writes the child's pid as a decimal line to fd 3, closes fd 3,
 * waits for the child and exits with its status (128+N when killed by signal N).
 *
 * Why a fork: the restorer (Node) must not trace its own child, because libuv
 * reaps its children with waitpid and would swallow the ptrace stops. The held
 * process is the restorer's grandchild; the waiter is its child and carries the
 * exit status back. See docs/adr/0003-replay-launcher.md.
 *
 * --exec FILE: exec FILE with CMD ARGS... as its whole argv (CMD is argv[0]), as the
 * shell's `exec -a CMD FILE` does. For a multi-call binary (busybox run as `sh`) the
 * program is chosen by argv[0], which must stay what it was, while the file exec'd is
 * the recorded executable: argv[0] alone may name another program here, or none.
 *
 * --listen-fds (socket handoff): the restorer sends SIGUSR1 with sigqueue(3), its
 * value the number N of listening sockets it will put at fds 3..3+N-1. The held
 * process then sets LISTEN_FDS=N and LISTEN_PID to its own pid — which stays the
 * program's, since exec keeps the pid — as socket activation (sd_listen_fds)
 * expects; N = 0 unsets them, so a stale LISTEN_FDS never reaches CMD. Only the
 * held process itself knows its pid before exec in a pod, hence this flag.
 * LISTEN_FDNAMES is a string, too long for a signal's value: with the flag the
 * launcher creates a memfd named NAMES_MEMFD before the fork (so the held process
 * has it from its first instruction, and the restorer that finds the held process
 * finds it too), the restorer writes the names into it through /proc/PID/fd before
 * the signal, and the held process sets LISTEN_FDNAMES from it (unset when empty).
 * A memfd needs no writable path in the container and no size limit; close-on-exec,
 * it is gone before CMD runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The memfd the restorer writes LISTEN_FDNAMES into (its /proc/PID/fd link reads "/memfd:" NAME " (deleted)"). */
#define NAMES_MEMFD "fdckpt-hold:LISTEN_FDNAMES"

static pid_t child;

static void forward(int sig) {
	if (child > 0) kill(child, sig);
}

static int usage(void) {
	fprintf(stderr, "usage: fdckpt-hold [--timeout SECONDS] [--listen-fds] [--exec FILE] -- CMD [ARGS...]\n");
	return 2;
}

/* What the restorer wrote into the names memfd, NUL-terminated (NULL: nothing, or unreadable). */
static char *read_names(int fd) {
	struct stat st;
	char *buf;
	off_t got = 0;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= 0) return NULL;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) return NULL;
	while (got < st.st_size) {
		ssize_t r = pread(fd, buf + got, (size_t)(st.st_size - got), got);
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) break;
		got += r;
	}
	buf[got] = 0;
	return buf;
}

/* LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES for n handed-off sockets (n = 0: none, unset them). */
static void listen_env(int n, int names_fd) {
	char value[32];
	char *names = n > 0 ? read_names(names_fd) : NULL;
	if (names_fd >= 0) close(names_fd);
	if (n <= 0) {
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDNAMES");
		return;
	}
	snprintf(value, sizeof value, "%d", n);
	setenv("LISTEN_FDS", value, 1);
	snprintf(value, sizeof value, "%d", (int)getpid());
	setenv("LISTEN_PID", value, 1);
	if (names && *names) setenv("LISTEN_FDNAMES", names, 1);
	else unsetenv("LISTEN_FDNAMES");
	free(names);
}

static void hold_and_exec(const char *file, char **cmd, long timeout, int names_fd, int report,
			  const sigset_t *oldmask) {
	sigset_t usr1;
	siginfo_t info;
	struct timespec ts = {.tv_sec = timeout, .tv_nsec = 0};
	if (report) close(3);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	for (;;) {
		int sig = sigtimedwait(&usr1, &info, &ts);
		if (sig == SIGUSR1) break;
		if (sig < 0 && errno == EINTR) continue;
		fprintf(stderr, "fdckpt-hold: no restorer signal within %ld s\n", timeout);
		_exit(125);
	}
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	if (names_fd >= 0) listen_env(info.si_code == SI_QUEUE ? info.si_value.sival_int : 0, names_fd);
	execvp(file ? file : cmd[0], cmd);
	fprintf(stderr, "fdckpt-hold: exec %s: %s\n", file ? file : cmd[0], strerror(errno));
	_exit(127);
}

int main(int argc, char **argv) {
	long timeout = 30;
	int listen_fds = 0;
	const char *file = NULL;
	int names_fd = -1;
	int report;
	int i = 1;
	sigset_t usr1, oldmask;
	char line[32];
	int status, len;

	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--timeout") == 0) {
			char *end;
			timeout = strtol(argv[++i], &end, 10);
			if (*end || timeout <= 0) return usage();
		} else if (strcmp(argv[i], "--listen-fds") == 0) {
			listen_fds = 1;
		} else if (i + 1 < argc && strcmp(argv[i], "--exec") == 0 && argv[i + 1][0] != 0) {
			file = argv[++i];
		} else {
			return usage();
		}
	}
	if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc) return usage();
	/* Decided before the memfd exists: it may take fd 3 when fd 3 is closed (in a pod). */
	report = fcntl(3, F_GETFD) >= 0;
	if (listen_fds) {
		names_fd = memfd_create(NAMES_MEMFD, MFD_CLOEXEC);
		if (names_fd < 0) {
			perror("fdckpt-hold: memfd_create");
			return 126;
		}
	}

	/* Blocked before fork: a SIGUSR1 sent any time after the pid is known stays pending. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &oldmask);
	child = fork();
	if (child < 0) {
		perror("fdckpt-hold: fork");
		return 126;
	}
	if (child == 0) hold_and_exec(file, argv + i + 1, timeout, names_fd, report, &oldmask);
	if (names_fd >= 0) close(names_fd);

	/* In a pod nobody listens on fd 3 (the agent finds the held child by its cgroup):
	 * report the pid only when fd 3 is open. */
	if (report) {
		len = snprintf(line, sizeof line, "%d\n", (int)child);
		if (write(3, line, (size_t)len) != len) {
			perror("fdckpt-hold: write pid to fd 3");
			kill(child, SIGKILL);
		}
		close(3);
	}
	/* Terminal signals reach the whole process group already; forward only targeted ones. */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGTERM, forward);
	signal(SIGHUP, forward);
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR) {
			perror("fdckpt-hold: waitpid");
			return 126;
		}
	if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
