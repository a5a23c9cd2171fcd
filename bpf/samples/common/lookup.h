/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lookup.h - BPF-side map lookups shared by the sample data planes in their normal (map) build,
 * the counterparts of ceiling.h's compiled-in CEIL_* lookups, so both builds call the same
 * function names:
 *
 * MAP_LPM4(fn, map, vtype) defines `static const vtype *fn(const __u8 *addr)`: a full-length
 * (/32) lookup of a 4-byte address in the LPM trie `map` (key struct lpm4_key);
 * MAP_LPM6(fn, map, vtype) the same for 16-byte addresses (/128, struct lpm6_key);
 * MAP_ARRAY(fn, map, vtype) defines `static const vtype *fn(__u32 idx)` on the array `map`.
 */
#ifndef RS_SAMPLES_LOOKUP_H
#define RS_SAMPLES_LOOKUP_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Keys of the samples' LPM tries (BPF_F_NO_PREALLOC, prefix length then address bytes). */
struct lpm4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

#define MAP_LPM4(fn, map, vtype)						\
static __always_inline const vtype *fn(const __u8 *addr)			\
{										\
	struct lpm4_key k = { .prefixlen = 32 };				\
										\
	__builtin_memcpy(k.addr, addr, 4);					\
	return bpf_map_lookup_elem(&map, &k);					\
}

#define MAP_LPM6(fn, map, vtype)						\
static __always_inline const vtype *fn(const __u8 *addr)			\
{										\
	struct lpm6_key k = { .prefixlen = 128 };				\
										\
	__builtin_memcpy(k.addr, addr, 16);					\
	return bpf_map_lookup_elem(&map, &k);					\
}

#define MAP_ARRAY(fn, map, vtype)						\
static __always_inline const vtype *fn(__u32 idx)				\
{										\
	return bpf_map_lookup_elem(&map, &idx);					\
}

#endif /* RS_SAMPLES_LOOKUP_H */
