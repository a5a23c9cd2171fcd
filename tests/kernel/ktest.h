/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ktest.h - shared by the kernel tests (cmocka, one translation unit each): the log callback
 * (warnings and info on stderr one line each, debug too when RS_TEST_DEBUG is set) and the
 * start of main(): skip without root, install the callback, route libbpf's output through it;
 * the id of a program fd.
 *
 * Header-only (static functions) so every test stays one translation unit.
 */
#ifndef RS_KTEST_H
#define RS_KTEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent/agent.h"

/* CTest's skip code (SKIP_RETURN_CODE of the kernel tests). */
#define KTEST_SKIP	77

static inline void ktest_log(enum rs_log_level level, const char *fmt, va_list ap)
{
	if (level == RS_LOG_DEBUG && !getenv("RS_TEST_DEBUG"))
		return;
	vfprintf(stderr, fmt, ap);
	if (!*fmt || fmt[strlen(fmt) - 1] != '\n')
		fputc('\n', stderr);
}

/* First thing in main(): 0, or KTEST_SKIP (say so and return it) when not root. */
static inline int ktest_start(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: needs root for BPF\n");
		return KTEST_SKIP;
	}
	rs_set_log_fn(ktest_log);
	rs_route_libbpf_log();
	return 0;
}

/* Kernel id of the program behind fd, 0 when it is none. */
static inline uint32_t ktest_prog_id(int fd)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

#endif /* RS_KTEST_H */
