/*
 * gaterun -J: a GNU make jobserver whose tokens are slots of the gate.
 * The build's first job runs in gaterun's own slot (the implicit token);
 * every byte gaterun writes to the token pipe is a slot it took first, in
 * line with every other user of the gate; every byte the build writes back
 * is read at once and its slot released.
 *
 * The token pipe is sized to one page: a one-page pipe polls
 * POLLOUT exactly when it is empty (checked on Linux 6.x: one byte in it,
 * no POLLOUT), so gaterun learns without polling that the build took the
 * spare token, and takes the next slot. In the fifo style the build writes
 * tokens back into the same pipe (the pipe style gives it a return pipe of
 * its own: make_pipes); every write to a pipe wakes an edge-triggered epoll of
 * its reading end, even a write into a pipe that is not empty (Linux 5.14,
 * "pipe: make pipe writes always wake up readers"; checked on 6.x), so
 * gaterun sees every return and reads all but one byte (FIONREAD): at most
 * one token, the spare, lies idle. (inotify would do too, but its
 * instances are few, 128 per user by default.) A spare untaken for JS_IDLE while others wait for the
 * gate goes back to them, and gaterun queues again behind them.
 *
 * Styles (GNU make manual, "POSIX Jobserver Interaction"): pipe passes two
 * descriptors, of the token pipe and of the return pipe (--jobserver-auth=
 * R,W), fifo passes the path of a FIFO (--jobserver-auth=fifo:
 * PATH; make 4.3 aborts on it, ninja 1.13 accepts nothing else). Either way
 * gaterun counts: when the build ends, every slot goes back.
 */
#include "config.h"

#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "exitcodes.h"
#include "gate.h"
#include "gaterun.h"
#include "jobserver.h"
#include "sys.h"

/* A spare token untaken this long goes back to those waiting for it. */
#define JS_IDLE_NS	1000000000LL
#define JS_PIPE_SIZE	4096	/* one page: see the top of the file */

struct jobserver {
	int		style;		/* JS_PIPE or JS_FIFO */
	int		fd;		/* ours: O_RDWR, non-blocking */
	int		ep;		/* epoll: EPOLLIN|EPOLLET on fd */
	int		ret;		/* pipe style: returns read here */
	int		rfd, wfd;	/* pipe style: the build's, or -1 */
	char		dir[PATH_MAX];	/* fifo style: kept while it runs */
	char		path[PATH_MAX + 8];
	struct gate	*g;		/* NULL until serving */
	struct gate_req	req;		/* of a token slot */
	char		*command;
	pid_t		build;
	int		queued;		/* in line for a slot */
	int		failed;		/* the gate failed: no more tokens */
	int64_t		spare_at;	/* when the spare went in; 0: none */
	const struct pollfd *gfds;	/* the gate's, while queued */
	size_t		ngfds;
	int		gms;
};

/* -J's argument as a style (see jobserver.h). */
int
jobserver_style(const char *s)
{
	if (s == NULL || strcmp(s, "auto") == 0)
		return JS_AUTO;
	if (strcmp(s, "pipe") == 0)
		return JS_PIPE;
	if (strcmp(s, "fifo") == 0)
		return JS_FIFO;
	errx(EXIT_GATERUN, "jobserver style is auto, pipe or fifo: '%s'", s);
}

/* 1 if word (up to an unescaped space) is a jobserver option of make's. */
static int
auth_word(const char *w)
{
	return strncmp(w, "--jobserver-auth=", 17) == 0 ||
	    strncmp(w, "--jobserver-fds=", 16) == 0;
}

/* Length of the word at s: up to a space not escaped by a backslash. */
static size_t
word_len(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && s[i] != ' '; i++)
		if (s[i] == '\\' && s[i + 1] != '\0')
			i++;
	return i;
}

/*
 * MAKEFLAGS (or CARGO_MAKEFLAGS) with ours as the only jobserver option,
 * last among the options: only the last one counts, and make 4.3 would
 * still choke on an earlier fifo: one. Variable definitions, after a word
 * "--", stay last and as they were.
 */
static char *
edit_flags(const char *old, const char *auth)
{
	size_t len = strlen(old), i = 0, n;
	char *s;

	if ((s = malloc(len + strlen(auth) + 4)) == NULL)
		err(EXIT_GATERUN, "malloc");
	s[0] = '\0';
	while (old[i] != '\0') {
		if (old[i] == ' ') {
			i++;
			continue;
		}
		n = word_len(old + i);
		if (n == 2 && strncmp(old + i, "--", 2) == 0)
			break;
		if (!auth_word(old + i)) {
			if (s[0] != '\0')
				(void)strlcat(s, " ", len + strlen(auth) + 4);
			(void)strncat(s, old + i, n);
		}
		i += n;
	}
	if (s[0] != '\0')
		(void)strlcat(s, " ", len + strlen(auth) + 4);
	(void)strlcat(s, auth, len + strlen(auth) + 4);
	if (old[i] != '\0') {
		(void)strlcat(s, " ", len + strlen(auth) + 4);
		(void)strlcat(s, old + i, len + strlen(auth) + 4);
	}
	return s;
}

/*
 * The build's environment: the caller's, with MAKEFLAGS naming our
 * jobserver, and CARGO_MAKEFLAGS too when set (cargo reads it first).
 */
static char **
build_env(char **envp, const char *auth)
{
	static const char *const vars[] = { "MAKEFLAGS", "CARGO_MAKEFLAGS" };
	const char *val[2] = { "", NULL };
	char **env, *v;
	size_t n, i, j, k, len;

	for (n = 0; envp[n] != NULL; n++)
		;
	if ((env = reallocarray(NULL, n + 3, sizeof(*env))) == NULL)
		err(EXIT_GATERUN, "malloc");
	for (i = k = 0; i < n; i++) {
		for (j = 0; j < 2; j++) {
			len = strlen(vars[j]);
			if (strncmp(envp[i], vars[j], len) == 0 &&
			    envp[i][len] == '=')
				break;
		}
		if (j == 2)
			env[k++] = envp[i];
		else if (j == 0 || val[j] == NULL)
			val[j] = envp[i] + strlen(vars[j]) + 1;
	}
	for (j = 0; j < 2; j++) {
		if (val[j] == NULL)
			continue;
		v = edit_flags(val[j], auth);
		if (asprintf(&env[k++], "%s=%s", vars[j], v) == -1)
			err(EXIT_GATERUN, "malloc");
		free(v);
	}
	env[k] = NULL;
	return env;
}

/*
 * -jN on the build's command line makes make leave the jobserver (it
 * says "resetting jobserver mode") and run N jobs in our one slot.
 */
static void
warn_jobs(char **cmd)
{
	size_t i;

	for (i = 1; cmd[0] != NULL && cmd[i] != NULL; i++)
		if (strncmp(cmd[i], "-j", 2) == 0 ||
		    strcmp(cmd[i], "--jobs") == 0 ||
		    strncmp(cmd[i], "--jobs=", 7) == 0) {
			warnx("warning: '%s' on the command line: the build "
			    "leaves the jobserver and runs its own number of "
			    "jobs in one slot (with -J the gate's slots are "
			    "the build's jobs: drop it)", cmd[i]);
			return;
		}
}

/* Our end sized and watched (js->path names it in errors). */
static void
watch(struct jobserver *js)
{
	struct epoll_event ev;

	if (fcntl(js->fd, F_SETPIPE_SZ, JS_PIPE_SIZE) == -1 ||
	    (js->ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		warn("cannot make the jobserver's pipe %s", js->path);
		jobserver_close(js);
		exit(EXIT_GATERUN);
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLET;
	if (epoll_ctl(js->ep, EPOLL_CTL_ADD, js->fd, &ev) == -1) {
		warn("cannot watch the jobserver's pipe %s", js->path);
		jobserver_close(js);
		exit(EXIT_GATERUN);
	}
}

/*
 * The FIFO in a directory of our own, opened, sized, watched; under
 * TMPDIR unless it is not an absolute path of a directory, or holds
 * whitespace (MAKEFLAGS words end at a space: ninja would not find it).
 */
static void
make_fifo(struct jobserver *js)
{
	const char *tmp = getenv("TMPDIR");
	struct stat st;

	if (tmp == NULL || *tmp != '/' || tmp[strcspn(tmp, " \t\n\v\f\r")] ||
	    stat(tmp, &st) == -1 || !S_ISDIR(st.st_mode))
		tmp = "/tmp";
	(void)snprintf(js->dir, sizeof(js->dir), "%s/gaterun-jobserver.XXXXXX",
	    tmp);
	if (mkdtemp(js->dir) == NULL)
		err(EXIT_GATERUN, "cannot make a directory for the jobserver "
		    "in %s", tmp);
	(void)snprintf(js->path, sizeof(js->path), "%s/fifo", js->dir);
	if (mkfifo(js->path, 0600) == -1 ||
	    (js->fd = open(js->path, O_RDWR | O_NONBLOCK | O_CLOEXEC)) == -1) {
		warn("cannot make the jobserver's FIFO %s", js->path);
		jobserver_close(js);
		exit(EXIT_GATERUN);
	}
	watch(js);
}

/*
 * Pipe style: two pipes, no name. The build reads tokens from rfd (the
 * token pipe, which we fill through an O_RDWR, non-blocking open of our
 * own made through /proc, so that we can take the spare back without
 * touching the build's blocking end) and writes them back to wfd, the
 * write end of a return pipe only we read (ret): a returned token always
 * reaches us, never the build again before the gate saw it. GNU make's
 * manual ("POSIX Jobserver Interaction") names R and W as two
 * descriptors; make 4.3 reads R and writes W (checked with strace).
 */
static void
make_pipes(struct jobserver *js)
{
	int tp[2], rp[2] = { -1, -1 };

	if (pipe2(tp, O_CLOEXEC) == -1 || pipe2(rp, O_CLOEXEC) == -1)
		err(EXIT_GATERUN, "cannot make the jobserver's pipes");
	(void)snprintf(js->path, sizeof(js->path), "/proc/self/fd/%d", tp[0]);
	js->fd = open(js->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	(void)xclose(tp[1]);
	js->rfd = tp[0];
	js->ret = rp[0];
	js->wfd = rp[1];
	if (js->fd == -1 || fcntl(js->ret, F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(js->rfd, F_SETFD, 0) == -1 ||
	    fcntl(js->wfd, F_SETFD, 0) == -1) {
		warn("cannot open the jobserver's pipe %s", js->path);
		jobserver_close(js);
		exit(EXIT_GATERUN);
	}
	watch(js);
}

/* The FIFO, the style auto stands for, and the build's environment. */
struct jobserver *
jobserver_open(const struct opts *o, struct opts *copy)
{
	struct jobserver *js;
	const char *base;
	char auth[PATH_MAX + 64];

	if ((js = calloc(1, sizeof(*js))) == NULL)
		err(EXIT_GATERUN, "malloc");
	js->fd = js->ep = js->ret = js->rfd = js->wfd = -1;
	js->style = o->jobserver;
	base = strrchr(o->cmd[0], '/') ? strrchr(o->cmd[0], '/') + 1 :
	    o->cmd[0];
	if (js->style == JS_AUTO)
		js->style = strcmp(base, "ninja") == 0 ||
		    strcmp(base, "samu") == 0 ? JS_FIFO : JS_PIPE;
	warn_jobs(o->cmd);
	if (js->style == JS_FIFO) {
		make_fifo(js);
		(void)snprintf(auth, sizeof(auth), "--jobserver-auth=fifo:%s",
		    js->path);
	} else {
		/* Blocking, as clients expect; inherited by the command. */
		make_pipes(js);
		(void)snprintf(auth, sizeof(auth), "--jobserver-auth=%d,%d",
		    js->rfd, js->wfd);
	}
	*copy = *o;
	copy->envp = build_env(o->envp, auth);
	return js;
}

/* Token slots: recorded under the build's PID too, marked for --status. */
void
jobserver_serve(struct jobserver *js, struct gate *g,
    const struct gate_req *req, pid_t build)
{
	js->g = g;
	js->build = build;
	js->req = *req;
	js->req.self_cmd = 0;
	js->req.cmd = build;
	js->req.need = NULL;	/* resource needs: the build's start only */
	if (asprintf(&js->command, "%s%s", req->command, JS_TOKEN_MARK) == -1)
		js->command = NULL;
	else
		js->req.command = js->command;
}

/* Bytes in the pipe now (0 if it cannot say). */
static int
in_pipe(const struct jobserver *js)
{
	int n;

	return ioctl(js->fd, FIONREAD, &n) == -1 ? 0 : n;
}

/* Give back the slots of k tokens read out of the pipe (never our own). */
static void
give_back(struct jobserver *js, size_t k)
{
	while (k-- > 0 && gate_held(js->g) > 1)
		if (gate_release_slot(js->g, gate_slot(js->g)) == -1)
			warn("cannot release a slot of the jobserver (it is "
			    "freed when this process is gone)");
}

/*
 * Read back what the build returned: every byte past the one spare the
 * pipe may hold (all of them when no token is out: those are not ours),
 * each a slot given back. Returns what is left in the pipe.
 */
static int
reclaim(struct jobserver *js)
{
	char buf[256];
	ssize_t r;
	int n, keep;

	while (js->ret != -1 && (r = read(js->ret, buf, sizeof(buf))) > 0)
		give_back(js, (size_t)r);	/* pipe style: all returns */
	for (;;) {
		n = in_pipe(js);
		keep = gate_held(js->g) > 1;
		if (n <= keep)
			return n;
		if ((size_t)(n - keep) < sizeof(buf))
			r = read(js->fd, buf, (size_t)(n - keep));
		else
			r = read(js->fd, buf, sizeof(buf));
		if (r <= 0)
			return in_pipe(js);	/* taken meanwhile */
		give_back(js, (size_t)r);
	}
}

/* A slot was just taken for a token: in the pipe if empty, else back. */
static void
offer(struct jobserver *js)
{
	if (in_pipe(js) == 0 && write(js->fd, "+", 1) == 1) {
		js->spare_at = mono_ns();
		return;
	}
	give_back(js, 1);
}

/* The gate failed us: the build goes on with the slots it has. */
static void
gate_failed(struct jobserver *js)
{
	warnx("jobserver: cannot take a slot of the gate: %s (the build "
	    "goes on with the %zu it holds)", gate_strerror(errno),
	    gate_held(js->g));
	js->failed = 1;
	js->queued = 0;
}

/* A step in line; the slot, when it comes, goes into the pipe. */
static void
in_line(struct jobserver *js)
{
	int r;

	r = gate_poll(js->g, &js->req, &js->gfds, &js->ngfds, &js->gms);
	if (r == 1) {
		js->queued = 0;
		offer(js);
	} else if (r == -1)
		gate_failed(js);
}

/* The spare was taken (or went back): ask the gate for the next slot. */
static void
ask(struct jobserver *js)
{
	int r;

	js->spare_at = 0;
	if ((r = gate_enqueue(js->g, &js->req, 1)) == 1)
		offer(js);
	else if (r == 0) {
		js->queued = 1;
		/* The token's record lives as long as the build does. */
		(void)gate_set_cmd(js->g, js->build);
		in_line(js);
	} else
		gate_failed(js);
}

/*
 * The spare idled JS_IDLE_NS: if someone else waits for the gate, or the
 * limit was lowered below the slots held, it goes back (we read it back,
 * release it and queue again, unless in line already: a token the build
 * returned became the spare while we waited).
 */
static void
idle(struct jobserver *js)
{
	struct gate_info gi;
	size_t nw = 0;
	int over = 0;
	char c;

	if (js->spare_at == 0 || mono_ns() - js->spare_at < JS_IDLE_NS)
		return;
	js->spare_at = mono_ns();
	if (gate_info(js->g, &gi) == 0) {
		nw = gi.nw - (js->queued && gi.nw > 0);
		over = gi.nh > gi.limit;
		gate_info_free(&gi);
	}
	if ((nw > 0 || over) && read(js->fd, &c, 1) == 1) {
		give_back(js, 1);
		if (!js->queued)
			ask(js);
	}
}

/* Hand out, take back and give away what the pipe and the gate say. */
static void
settle(struct jobserver *js)
{
	int n;

	(void)reclaim(js);
	if (js->queued)
		in_line(js);
	n = in_pipe(js) > 0;
	if (n == 0 && !js->queued && !js->failed)
		ask(js);
	else if (n == 0)
		js->spare_at = 0;
	else if (js->spare_at == 0)
		js->spare_at = mono_ns();	/* a token returned as spare */
	idle(js);
}

/*
 * Settle, then sleep on: the pipe emptied (the spare taken, POLLOUT only
 * while a spare is in it), a write to it (the epoll), the gate's fds while
 * in line, a signal, or the spare's idle second.
 */
void
jobserver_step(struct jobserver *js, const sigset_t *sleepmask)
{
	struct epoll_event ev[4];
	struct pollfd *pfd;
	struct timespec ts, *tsp = NULL;
	int64_t left = -1;
	size_t n = 2, i;

	settle(js);
	/*
	 * Our own transactions since the last step (a release that served
	 * our place in line) may have closed the gate's fds: fresh ones.
	 */
	if (js->queued)
		in_line(js);
	if ((pfd = reallocarray(NULL, js->ngfds + 3, sizeof(*pfd))) == NULL) {
		(void)ppoll(NULL, 0, NULL, sleepmask);
		return;
	}
	pfd[0].fd = js->fd;
	pfd[0].events = in_pipe(js) > 0 ? POLLOUT : 0;
	pfd[1].fd = js->ep;
	pfd[1].events = POLLIN;
	if (js->ret != -1) {
		pfd[n].fd = js->ret;	/* a token returned */
		pfd[n++].events = POLLIN;
	}
	for (i = 0; js->queued && i < js->ngfds; i++) {
		pfd[n].fd = js->gfds[i].fd;
		pfd[n++].events = POLLIN;
	}
	if (js->spare_at != 0)
		left = js->spare_at + JS_IDLE_NS - mono_ns();
	if (js->queued && js->gms >= 0 &&
	    (left < 0 || left > js->gms * 1000000LL))
		left = js->gms * 1000000LL;
	if (left >= 0) {
		ts.tv_sec = left / 1000000000;
		ts.tv_nsec = left % 1000000000;
		tsp = &ts;
	}
	(void)ppoll(pfd, n, tsp, sleepmask);
	free(pfd);
	while (epoll_wait(js->ep, ev, 4, 0) > 0)
		;	/* consumed: the next write is a new edge */
}

/* Close our ends; a FIFO still named goes with its directory. */
void
jobserver_close(struct jobserver *js)
{
	if (js == NULL)
		return;
	if (js->fd != -1)
		(void)xclose(js->fd);
	if (js->ep != -1)
		(void)xclose(js->ep);
	if (js->ret != -1)
		(void)xclose(js->ret);
	if (js->rfd != -1)
		(void)xclose(js->rfd);
	if (js->wfd != -1)
		(void)xclose(js->wfd);
	if (js->dir[0] != '\0') {
		(void)unlink(js->path);
		(void)rmdir(js->dir);
	}
	free(js->command);
	free(js);
}
