/*
 * fdckpt-hold: the launcher that replay restores a file table into.
 *
 *   fdckpt-hold [--timeout SECONDS] -- CMD [ARGS...]
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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t child;

static void forward(int sig) {
	if (child > 0) kill(child, sig);
}

static int usage(void) {
	fprintf(stderr, "usage: fdckpt-hold [--timeout SECONDS] -- CMD [ARGS...]\n");
	return 2;
}

static void hold_and_exec(char **cmd, long timeout, const sigset_t *oldmask) {
	sigset_t usr1;
	struct timespec ts = {.tv_sec = timeout, .tv_nsec = 0};
	close(3);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	for (;;) {
		int sig = sigtimedwait(&usr1, NULL, &ts);
		if (sig == SIGUSR1) break;
		if (sig < 0 && errno == EINTR) continue;
		fprintf(stderr, "fdckpt-hold: no restorer signal within %ld s\n", timeout);
		_exit(125);
	}
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	execvp(cmd[0], cmd);
	fprintf(stderr, "fdckpt-hold: exec %s: %s\n", cmd[0], strerror(errno));
	_exit(127);
}

int main(int argc, char **argv) {
	long timeout = 30;
	int i = 1;
	sigset_t usr1, oldmask;
	char line[32];
	int status, len;

	if (i + 1 < argc && strcmp(argv[i], "--timeout") == 0) {
		char *end;
		timeout = strtol(argv[i + 1], &end, 10);
		if (*end || timeout <= 0) return usage();
		i += 2;
	}
	if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc) return usage();

	/* Blocked before fork: a SIGUSR1 sent any time after the pid is known stays pending. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &oldmask);
	child = fork();
	if (child < 0) {
		perror("fdckpt-hold: fork");
		return 126;
	}
	if (child == 0) hold_and_exec(argv + i + 1, timeout, &oldmask);

	/* In a pod nobody listens on fd 3 (the agent finds the held child by its cgroup):
	 * report the pid only when fd 3 is open. */
	if (fcntl(3, F_GETFD) >= 0) {
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
