// SPDX-License-Identifier: BSD-2-Clause
/*
 * metrics.c - the agent's Prometheus metrics: the text exposition format (version 0.0.4),
 * written atomically to a file for node_exporter's textfile collector (temporary file in the
 * same directory, fsync, rename), and optionally served over HTTP on a configured address
 * (a tiny non-blocking server: GET /metrics answers the last rendering, anything else 404).
 * The HTTP endpoint is meant for loopback or a management network; it has no authentication.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "agent/agent.h"

struct rs_agent_metrics {
	int fd;
};

struct sbuf {
	char *p;
	size_t len, cap;
	int err;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		if (b->err)
			return;
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = -EINVAL;
			return;
		}
		if (b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		b->cap = (b->cap + (size_t)n) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			b->err = -ENOMEM;
	}
}

static void counter(struct sbuf *b, const char *name, const char *help, uint64_t v)
{
	sb_printf(b, "# HELP respec_agent_%s %s\n# TYPE respec_agent_%s counter\n"
		  "respec_agent_%s %llu\n", name, help, name, name, (unsigned long long)v);
}

static void gauge(struct sbuf *b, const char *name, const char *help, double v)
{
	sb_printf(b, "# HELP respec_agent_%s %s\n# TYPE respec_agent_%s gauge\n"
		  "respec_agent_%s %g\n", name, help, name, name, v);
}

/* Label value with \, " and newline escaped. */
static const char *esc(const char *s, char *buf, size_t sz)
{
	size_t o = 0;

	for (; *s && o + 3 < sz; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			buf[o++] = '\\';
			buf[o++] = *s == '\n' ? 'n' : *s;
		} else {
			buf[o++] = *s;
		}
	}
	buf[o] = 0;
	return buf;
}

static void point_labels(const struct rs_agent_point_info *pi, char *out, size_t sz)
{
	char point[160], e1[200], e2[64];

	rs_attach_point_str(&pi->pt, point, sizeof(point));
	snprintf(out, sz, "point=\"%s\",prog=\"%s\"", esc(point, e1, sizeof(e1)),
		 esc(pi->prog_name, e2, sizeof(e2)));
}

int rs_agent_metrics_render(const struct rs_agent_env *env, const struct rs_agent_point_info *pts,
			    size_t cnt, double cpu_s, char **buf, size_t *len)
{
	const struct rs_agent_stats *s = &env->stats;
	struct sbuf b = {};
	char lb[400];
	size_t i;
	int st;

	b.cap = 4096;
	b.p = malloc(b.cap);
	if (!b.p)
		return -ENOMEM;
	gauge(&b, "points", "attach points the agent manages", (double)cnt);
	counter(&b, "state_transitions_total", "control-loop state transitions", s->transitions);
	counter(&b, "swaps_total", "compare-and-swaps of specialized or original programs",
		s->swaps);
	counter(&b, "reverts_total", "optimized programs reverted because they were slower",
		s->reverts);
	counter(&b, "respecializations_total", "specialized programs replaced by a newer version",
		s->respecializations);
	counter(&b, "guard_invalidations_total", "guard generations seen moving", s->guard_invalidations);
	counter(&b, "canary_runs_total", "canary replays run", s->canary_runs);
	counter(&b, "canary_divergences_total", "divergences found by canary replays",
		s->canary_divergences);
	counter(&b, "verifier_rejections_total", "specialized programs the verifier refused",
		s->verifier_rejections);
	counter(&b, "foreign_replacements_total", "programs replaced by someone else (left alone)",
		s->foreign_replacements);
	counter(&b, "profile_windows_total", "profiling windows run", s->profile_windows);
	counter(&b, "optimizations_total", "runs of the specializer", s->optimizations);
	counter(&b, "errors_total", "failed steps", s->errors);
	counter(&b, "capture_events_total", "program loads seen by the capture", s->capture_events);
	gauge(&b, "last_optimize_ms", "time of the last specializer run", s->last_optimize_ms);
	gauge(&b, "last_load_ms", "time of the last kernel load of a specialized program",
	      s->last_load_ms);
	gauge(&b, "last_canary_ms", "time of the last canary replay", s->last_canary_ms);
	sb_printf(&b, "# HELP respec_agent_cpu_seconds_total user+system CPU time of the agent\n"
		  "# TYPE respec_agent_cpu_seconds_total counter\n"
		  "respec_agent_cpu_seconds_total %.3f\n", cpu_s);

	sb_printf(&b, "# HELP respec_point_state current control-loop state of an attach point\n"
		  "# TYPE respec_point_state gauge\n");
	for (i = 0; i < cnt; i++) {
		point_labels(&pts[i], lb, sizeof(lb));
		for (st = 0; st < RS_AGENT_STATE_CNT; st++)
			sb_printf(&b, "respec_point_state{%s,state=\"%s\"} %d\n", lb,
				  rs_agent_state_name(st), pts[i].state == (enum rs_agent_state)st);
	}
	sb_printf(&b, "# HELP respec_point_info program ids at an attach point\n"
		  "# TYPE respec_point_info gauge\n");
	for (i = 0; i < cnt; i++) {
		point_labels(&pts[i], lb, sizeof(lb));
		sb_printf(&b, "respec_point_info{%s,orig_id=\"%u\",live_id=\"%u\"} 1\n", lb,
			  pts[i].orig_id, pts[i].live_id);
	}
	sb_printf(&b, "# HELP respec_point_specialized 1 when a specialized program of ours is in "
		  "place\n# TYPE respec_point_specialized gauge\n");
	for (i = 0; i < cnt; i++) {
		point_labels(&pts[i], lb, sizeof(lb));
		sb_printf(&b, "respec_point_specialized{%s} %d\n", lb, pts[i].ours_id != 0);
	}
	sb_printf(&b, "# HELP respec_point_guard_valid 1 when the specialized body runs (guards "
		  "hold), 0 when it falls back to the original code\n"
		  "# TYPE respec_point_guard_valid gauge\n");
	for (i = 0; i < cnt; i++) {
		if (!pts[i].ours_id)
			continue;
		point_labels(&pts[i], lb, sizeof(lb));
		sb_printf(&b, "respec_point_guard_valid{%s} %d\n", lb, pts[i].guard_valid);
	}
	sb_printf(&b, "# HELP respec_point_version specialized versions swapped in at the point\n"
		  "# TYPE respec_point_version counter\n");
	for (i = 0; i < cnt; i++) {
		point_labels(&pts[i], lb, sizeof(lb));
		sb_printf(&b, "respec_point_version{%s} %u\n", lb, pts[i].version);
	}
	sb_printf(&b, "# HELP respec_point_ns_per_packet cost per packet from bpf_stats windows\n"
		  "# TYPE respec_point_ns_per_packet gauge\n");
	for (i = 0; i < cnt; i++) {
		point_labels(&pts[i], lb, sizeof(lb));
		if (pts[i].orig_ns > 0)
			sb_printf(&b, "respec_point_ns_per_packet{%s,program=\"original\"} %.2f\n",
				  lb, pts[i].orig_ns);
		if (pts[i].ours_ns > 0)
			sb_printf(&b, "respec_point_ns_per_packet{%s,program=\"optimized\"} %.2f\n",
				  lb, pts[i].ours_ns);
	}
	sb_printf(&b, "# HELP respec_point_replay_ns_per_packet cost per packet from the A/B "
		  "replay of sampled packets\n# TYPE respec_point_replay_ns_per_packet gauge\n");
	for (i = 0; i < cnt; i++) {
		point_labels(&pts[i], lb, sizeof(lb));
		if (pts[i].replay_orig_ns > 0)
			sb_printf(&b, "respec_point_replay_ns_per_packet{%s,program=\"original\"} "
				  "%.2f\n", lb, pts[i].replay_orig_ns);
		if (pts[i].replay_ours_ns > 0)
			sb_printf(&b, "respec_point_replay_ns_per_packet{%s,program=\"optimized\"} "
				  "%.2f\n", lb, pts[i].replay_ours_ns);
	}
	if (b.err) {
		free(b.p);
		return b.err;
	}
	*buf = b.p;
	*len = b.len;
	return 0;
}

int rs_agent_metrics_write_file(const char *path, const char *buf, size_t len)
{
	char tmp[4200];
	size_t off = 0;
	ssize_t n;
	int fd, err = 0;

	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		rs_warn("metrics: %s: %s\n", tmp, strerror(errno));
		return err;
	}
	while (off < len) {
		n = write(fd, buf + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (!err && fsync(fd))
		err = -errno;
	close(fd);
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		rs_warn("metrics: %s: %s\n", path, strerror(-err));
		unlink(tmp);
	}
	return err;
}

/* "ADDR:PORT", "[v6]:PORT" or ":PORT" (loopback). */
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	char host[128];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535)
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	memset(ss, 0, sizeof(*ss));
	if (!*host)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = 0;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*in6);
		return inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	in4->sin_family = AF_INET;
	in4->sin_port = htons((uint16_t)port);
	*sl = sizeof(*in4);
	return inet_pton(AF_INET, host, &in4->sin_addr) == 1 ? 0 : -EINVAL;
}

int rs_agent_metrics_open(const char *listen_addr, struct rs_agent_metrics **out)
{
	struct rs_agent_metrics *m;
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	int one = 1, err;

	*out = NULL;
	if (parse_listen(listen_addr, &ss, &sl)) {
		rs_warn("metrics: listen address '%s': expected ADDR:PORT\n", listen_addr);
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->fd < 0)
		goto fail;
	setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(m->fd, (struct sockaddr *)&ss, sl) || listen(m->fd, 16))
		goto fail;
	*out = m;
	return 0;
fail:
	err = -errno;
	rs_warn("metrics: listen on %s: %s\n", listen_addr, strerror(errno));
	if (m->fd >= 0)
		close(m->fd);
	free(m);
	return err;
}

int rs_agent_metrics_fd(const struct rs_agent_metrics *m)
{
	return m ? m->fd : -1;
}

/* One request per connection; short reads of a request are waited for briefly. */
static void serve_one(int c, const char *buf, size_t len)
{
	char req[2048], hdr[256];
	size_t got = 0;
	ssize_t n;
	int tries = 0, hl;
	bool ok;

	while (got < sizeof(req) - 1 && tries++ < 50) {
		n = recv(c, req + got, sizeof(req) - 1 - got, 0);
		if (n > 0) {
			got += (size_t)n;
			req[got] = 0;
			if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
				break;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			break;
		usleep(2000);
	}
	req[got] = 0;
	ok = !strncmp(req, "GET /metrics ", 13) || !strncmp(req, "GET / ", 6);
	if (!ok) {
		buf = "not found: try /metrics\n";
		len = strlen(buf);
	}
	hl = snprintf(hdr, sizeof(hdr), "HTTP/1.0 %s\r\nContent-Type: %s\r\n"
		      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		      ok ? "200 OK" : "404 Not Found",
		      ok ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain", len);
	if (send(c, hdr, (size_t)hl, MSG_NOSIGNAL) == hl)
		while (len) {
			n = send(c, buf, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EAGAIN) {
				usleep(1000);
				continue;
			}
			if (n <= 0)
				break;
			buf += n;
			len -= (size_t)n;
		}
}

int rs_agent_metrics_serve(struct rs_agent_metrics *m, const char *buf, size_t len)
{
	int c, served = 0;

	if (!m)
		return 0;
	while (served < 16) {
		c = accept4(m->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? served : -errno;
		serve_one(c, buf, len);
		close(c);
		served++;
	}
	return served;
}

void rs_agent_metrics_close(struct rs_agent_metrics *m)
{
	if (!m)
		return;
	if (m->fd >= 0)
		close(m->fd);
	free(m);
}
