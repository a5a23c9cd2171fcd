// SPDX-License-Identifier: BSD-2-Clause
/* libbpf_log.c - libbpf's print callback routed through rs_log, one level down. */
#include <bpf/libbpf.h>

#include "agent/agent.h"

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum rs_log_level l = level == LIBBPF_WARN ? RS_LOG_INFO : RS_LOG_DEBUG;
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	rs_log(l, "%s", buf);
	return 0;
}

void rs_route_libbpf_log(void)
{
	libbpf_set_print(libbpf_print);
}
