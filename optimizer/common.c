// SPDX-License-Identifier: BSD-2-Clause
/*
 * common.c - error strings, the logging callback and small helpers (hex decoding, map type
 * classes) shared by all respec libraries.
 */
#include <stdio.h>
#include <string.h>

#include <linux/bpf.h>

#include "optimizer/common.h"

static rs_log_fn log_fn;

static const char *const rs_err_text[RS_ERR_MAX - RS_ERR_BASE] = {
	[RS_ERR_UNLIFTABLE - RS_ERR_BASE]	= "translated code cannot be lifted",
	[RS_ERR_PROOF - RS_ERR_BASE]		= "lift proof failed: reloaded program translates differently",
	[RS_ERR_RANGE - RS_ERR_BASE]		= "branch offset out of range",
	[RS_ERR_INVALID_PROG - RS_ERR_BASE]	= "invalid program",
	[RS_ERR_PROG_TYPE - RS_ERR_BASE]	= "unsupported program type (not XDP or TC)",
	[RS_ERR_NOT_FOUND - RS_ERR_BASE]	= "not found",
	[RS_ERR_AMBIGUOUS - RS_ERR_BASE]	= "ambiguous: matches more than one program",
	[RS_ERR_FORMAT - RS_ERR_BASE]		= "malformed input",
	[RS_ERR_NO_ORIGINAL - RS_ERR_BASE]	= "no source for the original bytecode",
	[RS_ERR_VERIFIER - RS_ERR_BASE]		= "rejected by the kernel verifier",
};

const char *rs_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err >= RS_ERR_BASE && err < RS_ERR_MAX)
		return rs_err_text[err - RS_ERR_BASE];
	return strerror(err);
}

rs_log_fn rs_set_log_fn(rs_log_fn fn)
{
	rs_log_fn old = log_fn;

	log_fn = fn;
	return old;
}

void rs_log(enum rs_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!log_fn)
		return;
	va_start(ap, fmt);
	log_fn(level, fmt, ap);
	va_end(ap);
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long rs_hex_decode(const char *s, void *out, size_t max, char sep)
{
	uint8_t *b = out;
	size_t n = 0;

	while (*s) {
		int hi = hex_nibble(s[0]), lo = hi < 0 ? -1 : hex_nibble(s[1]);

		if (lo < 0 || n >= max)
			return -1;
		b[n++] = (uint8_t)(hi << 4 | lo);
		s += 2;
		if (sep && *s == sep && s[1])
			s++;
	}
	return (long)n;
}

bool rs_map_type_percpu(uint32_t type)
{
	return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}
