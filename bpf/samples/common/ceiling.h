/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ceiling.h - BPF-side helpers for the "ceiling" builds of the samples (-DCEILING): lookups in
 * LPM tries whose contents ceiling-gen compiled in.  ceiling-gen flattens the prefixes of a
 * trie into sorted, disjoint address intervals (CEIL_<map>_STARTS, or _STARTS_HI/_LO for 16-byte
 * addresses) each with the index of the winning entry (CEIL_<map>_IDX, -1: no match) into
 * CEIL_<map>_VALS; a bounded binary search (CEIL_<map>_STEPS rounds) finds the interval.
 *
 * CEIL_LPM4(fn, map, vtype) defines `static const vtype *fn(const __u8 *addr)`;
 * CEIL_LPM6(fn, map, vtype) the same for 16-byte addresses.  Both answer what an LPM trie
 * lookup with a full-length prefix would answer.
 */
#ifndef RS_SAMPLES_CEILING_H
#define RS_SAMPLES_CEILING_H

#define CEIL_LPM4(fn, map, vtype)						\
static const union { __u8 raw[sizeof(vtype)]; vtype v; }			\
	fn##_vals[CEIL_##map##_NVALS] = { CEIL_##map##_VALS };		\
static const __u32 fn##_starts[CEIL_##map##_CNT] = { CEIL_##map##_STARTS };	\
static const int fn##_idx[CEIL_##map##_CNT] = { CEIL_##map##_IDX };		\
static __always_inline const vtype *fn(const __u8 *addr)			\
{										\
	__u32 a = bpf_ntohl(*(const __be32 *)addr), lo = 0;			\
	__u32 n = CEIL_##map##_CNT;						\
	int i, idx;								\
										\
	_Pragma("unroll")							\
	for (i = 0; i < CEIL_##map##_STEPS; i++) {				\
		__u32 half = n / 2, m = lo + half;				\
										\
		if (n <= 1)							\
			break;							\
		if (m < CEIL_##map##_CNT && fn##_starts[m] <= a)		\
			lo = m;							\
		n -= half;							\
	}									\
	if (lo >= CEIL_##map##_CNT)						\
		return 0;							\
	idx = fn##_idx[lo];							\
	if (idx < 0 || idx >= CEIL_##map##_NVALS)				\
		return 0;							\
	return &fn##_vals[idx].v;						\
}

#define CEIL_LPM6(fn, map, vtype)						\
static const union { __u8 raw[sizeof(vtype)]; vtype v; }			\
	fn##_vals[CEIL_##map##_NVALS] = { CEIL_##map##_VALS };		\
static const __u64 fn##_hi[CEIL_##map##_CNT] = { CEIL_##map##_STARTS_HI };	\
static const __u64 fn##_lo[CEIL_##map##_CNT] = { CEIL_##map##_STARTS_LO };	\
static const int fn##_idx[CEIL_##map##_CNT] = { CEIL_##map##_IDX };		\
static __always_inline const vtype *fn(const __u8 *addr)			\
{										\
	const __be32 *w = (const __be32 *)addr;					\
	__u64 ah = ((__u64)bpf_ntohl(w[0]) << 32) | bpf_ntohl(w[1]);		\
	__u64 al = ((__u64)bpf_ntohl(w[2]) << 32) | bpf_ntohl(w[3]);		\
	__u32 lo = 0, n = CEIL_##map##_CNT;					\
	int i, idx;								\
										\
	_Pragma("unroll")							\
	for (i = 0; i < CEIL_##map##_STEPS; i++) {				\
		__u32 half = n / 2, m = lo + half;				\
										\
		if (n <= 1)							\
			break;							\
		if (m < CEIL_##map##_CNT &&					\
		    (fn##_hi[m] < ah || (fn##_hi[m] == ah && fn##_lo[m] <= al)))	\
			lo = m;							\
		n -= half;							\
	}									\
	if (lo >= CEIL_##map##_CNT)						\
		return 0;							\
	idx = fn##_idx[lo];							\
	if (idx < 0 || idx >= CEIL_##map##_NVALS)				\
		return 0;							\
	return &fn##_vals[idx].v;						\
}

/* Dense ARRAY contents: CEIL_<map>_VALS for indexes < CEIL_<map>_CNT, zero up to _MAX. */
#define CEIL_ARRAY(fn, map, vtype)						\
static const union { __u8 raw[sizeof(vtype)]; vtype v; }			\
	fn##_vals[CEIL_##map##_CNT + 1] = { CEIL_##map##_VALS };		\
static __always_inline const vtype *fn(__u32 idx)				\
{										\
	if (idx < CEIL_##map##_CNT)						\
		return &fn##_vals[idx].v;					\
	/* the extra last element is zero, like unset array slots */		\
	return idx < CEIL_##map##_MAX ? &fn##_vals[CEIL_##map##_CNT].v : 0;	\
}

#endif /* RS_SAMPLES_CEILING_H */
