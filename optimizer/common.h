/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * common.h - what every respec library shares: error codes, the logging callback and the
 * options-struct convention.
 *
 * Errors are 0 or a negative errno; project-specific conditions use codes from RS_ERR_BASE
 * up, turned into text by rs_strerror().  Libraries never exit and never print directly: they
 * call rs_log(), which forwards to the callback installed with rs_set_log_fn() (nothing is
 * printed when none is installed).  libbpf's own output is routed through the same callback one
 * level down (libbpf warnings become respec info, libbpf info becomes debug).
 */
#ifndef RS_COMMON_H
#define RS_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum rs_err {
	RS_ERR_BASE = 4000,
	RS_ERR_UNLIFTABLE = RS_ERR_BASE,	/* translated code has a pattern we cannot lift */
	RS_ERR_PROOF,				/* reloaded lift does not translate identically */
	RS_ERR_RANGE,				/* a branch offset no longer fits its field */
	RS_ERR_INVALID_PROG,			/* structural validation failed */
	RS_ERR_PROG_TYPE,			/* program is not of a supported type (XDP/TC) */
	RS_ERR_NOT_FOUND,			/* no such program / attach point / map */
	RS_ERR_AMBIGUOUS,			/* a name or tag matches more than one program */
	RS_ERR_FORMAT,				/* malformed input file (pcap, JSON, ELF, ...) */
	RS_ERR_NO_ORIGINAL,			/* no source for the original bytecode */
	RS_ERR_VERIFIER,			/* the kernel verifier rejected a program */
	RS_ERR_MAX,
};

/* Text for a negative errno or a project code (pass the negative value as returned). */
const char *rs_strerror(int err);

enum rs_log_level {
	RS_LOG_WARN,
	RS_LOG_INFO,
	RS_LOG_DEBUG,
};

typedef void (*rs_log_fn)(enum rs_log_level level, const char *fmt, va_list ap);

/* Install the process-wide log callback; returns the previous one.  NULL silences. */
rs_log_fn rs_set_log_fn(rs_log_fn fn);
void rs_log(enum rs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define rs_warn(...)	rs_log(RS_LOG_WARN, __VA_ARGS__)
#define rs_info(...)	rs_log(RS_LOG_INFO, __VA_ARGS__)
#define rs_debug(...)	rs_log(RS_LOG_DEBUG, __VA_ARGS__)

/*
 * Options structs follow libbpf's pattern: the first member is `size_t sz`, callers declare
 * them with RS_OPTS(type, name, .field = value, ...), and libraries read fields only when they
 * lie within opts->sz (RS_OPTS_GET).
 */
#define RS_OPTS(TYPE, NAME, ...)						\
	struct TYPE NAME = ({							\
		memset(&NAME, 0, sizeof(struct TYPE));				\
		(struct TYPE){ .sz = sizeof(struct TYPE), __VA_ARGS__ };	\
	})
#define RS_OPTS_HAS(opts, field)						\
	((opts) && (opts)->sz >= offsetof(typeof(*(opts)), field) + sizeof((opts)->field))
#define RS_OPTS_GET(opts, field, fallback)					\
	(RS_OPTS_HAS(opts, field) ? (opts)->field : (fallback))

/*
 * Decode hex digits into at most `max` bytes; `sep` (0 for none) may stand between bytes
 * ("aa:bb:cc").  Returns the byte count, or -1 on a bad digit, odd length or overflow.
 */
long rs_hex_decode(const char *s, void *out, size_t max, char sep);

/* Per-CPU map types (enum bpf_map_type): user space sees one value per possible CPU, each
 * rounded up to 8 bytes. */
bool rs_map_type_percpu(uint32_t type);

#define RS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif /* RS_COMMON_H */
