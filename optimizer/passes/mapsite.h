/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mapsite.h - what the map passes (map_fold, table_elim, hot_keys) share, private to
 * optimizer/passes/: finding lookup sites in the working program, values of snapshot entries
 * (exact and longest-prefix match, per-CPU identity), the constant pool, the intra-path
 * constant tracker used to read a key off the stack, rewriting the uses of a lookup's result
 * once it is known, and the emitter of full-key compare chains.
 */
#ifndef RS_PASSES_MAPSITE_H
#define RS_PASSES_MAPSITE_H

#include "optimizer/pass.h"

#define RS_POOL_NAME	"rs_pool"

/* A map_lookup_elem call of the working program with its facts. */
struct rs_lookup_site {
	size_t idx;				/* index in ctx->prog */
	long orig;				/* index in ctx->orig */
	uint32_t map_idx;
	const struct rs_site_fact *fact;
	const struct rs_map_fact *mfact;
	const struct rs_map_snapshot *snap;	/* NULL when the snapshot lacks the map */
	const struct rs_map_ref *map;
};

/*
 * Every map_lookup_elem call of ctx->prog that comes from the original program and has a
 * site fact, in program order.  *sites is allocated (free()).
 */
int rs_lookup_sites(const struct rs_opt_ctx *ctx, struct rs_lookup_site **sites, size_t *cnt);

/* A helper call to map_lookup_elem. */
bool rs_insn_is_lookup(const struct bpf_insn *in);

/* Map types whose lookups answer "found or not" by exact key (hash family). */
bool rs_map_is_hash(uint32_t type);
bool rs_map_is_percpu(uint32_t type);

/*
 * Value a lookup of `key` returns on any CPU according to the snapshot: exact match for
 * hash/array maps, longest prefix match for LPM tries (lpm.c).  Returns 1 and *val (NULL when
 * the key is absent: only answered when the snapshot is complete or the key is an array index
 * out of range), 0 when it cannot be known (incomplete snapshot, per-CPU values differ), and
 * fills *why then.
 */
int rs_snap_value(const struct rs_map_snapshot *m, const uint8_t *key, const uint8_t **val,
		  char *why, size_t whysz);
/* Longest-prefix match of an LPM key (u32 prefixlen + data) in a snapshot; NULL when none. */
const uint8_t *rs_lpm_match(const struct rs_map_snapshot *m, const uint8_t *key);
/*
 * The entry that matches `key` (as rs_lpm_match) when it is a leaf: no other entry lies
 * inside its prefix, so every key whose prefixlen field equals key's and whose data starts
 * with that prefix gets the same answer.  Fills mask (key_size bytes: the prefixlen field and
 * the prefix bits set) and returns the entry's value; NULL when the match is not a leaf.
 */
const uint8_t *rs_lpm_leaf(const struct rs_map_snapshot *m, const uint8_t *key, uint8_t *mask);
/*
 * For a full-length key (prefixlen = all data bits) that matches nothing in a complete
 * snapshot: the largest aligned block of addresses around it that no entry overlaps (every
 * full-length key in it is absent).  Fills mask as rs_lpm_leaf; false when not applicable.
 */
bool rs_lpm_gap(const struct rs_map_snapshot *m, const uint8_t *key, uint8_t *mask);

/*
 * Append `len` bytes (8-byte aligned) to the program's constant pool (an ARRAY map of respec
 * with one frozen, read-only entry; created on first use, reused when the same bytes are
 * there already).  Gives the pool's map index and the offset of the bytes.
 */
int rs_pool_add(struct rs_opt_ctx *ctx, const void *data, uint32_t len, int *pool_idx,
		uint32_t *off);

/*
 * Known bytes of the stack just before instruction `idx` of the working program, from the
 * straight-line path (single-predecessor blocks) that reaches it.  known[i]/val[i] describe
 * byte fp-512+i.  Returns 0, or a negative errno.
 */
int rs_stack_consts(const struct rs_prog *prog, const struct rs_cfg *cfg, size_t idx,
		    bool known[512], uint8_t val[512]);

/*
 * Rewrite the uses of a pointer whose target is known, along the straight-line path after
 * `start` (the instruction that produced it in register `reg`): null checks on it are folded
 * (non_null: never null; else it is always null), loads through it (or its copies) at
 * constant offsets inside [0, len) of `bytes` (pointer = bytes + base) become immediates.
 * Edits go into `e` (made against prog); *folds counts the loads replaced.  Stops at a
 * join point, an exit, or when no register holds the pointer any more.  `bytes` may be NULL
 * (only null checks are folded).  `touched` (may be NULL) marks instructions edited already
 * (the walk stops there) and gets the ones edited here.
 */
int rs_fold_uses(const struct rs_prog *prog, const struct rs_cfg *cfg, struct rs_edit *e,
		 size_t start, int reg, bool non_null, const uint8_t *bytes, uint32_t len,
		 int32_t base, size_t *folds, bool *touched);

/* One entry of a compare chain: a full key and what the lookup gives for it. */
struct rs_chain_key {
	const uint8_t *key;		/* key_size bytes */
	const uint8_t *mask;		/* NULL: full key; else compare (key & mask) only */
	bool null;			/* r0 = 0 (absent) */
	int pool_idx;			/* else r0 = &pool[pool_off] */
	uint32_t pool_off;
};

/*
 * The code that replaces a map_lookup_elem call (r1 = map, r2 = fp + key_off): compares the
 * key on the stack against each entry in order (aligned 8/4/2/1-byte chunks, most
 * discriminating chunk first; an entry with a mask compares the masked bytes only: a leaf
 * prefix of an LPM trie), a hit sets r0 and jumps past the sequence; when nothing
 * matches: the original call when `fallback_call`, else r0 = 0.  Uses r0, r3-r5 (the call
 * clobbers them) and, for masked 8-byte chunks, r1 (reloaded with map `map_idx` before the
 * default call).  *out is allocated; every branch is local (targets NULL).
 */
int rs_chain_emit(const struct rs_chain_key *keys, size_t n, uint32_t key_size, int32_t key_off,
		  bool fallback_call, const struct bpf_insn *call, int map_idx,
		  struct bpf_insn **out, size_t *out_cnt);

/*
 * Estimated cost (in instructions) of the lookup itself by map type, and of a chain over
 * keys with hit probabilities p[0..n) (the rest falls to the default costing `miss_cost`).
 */
double rs_lookup_cost(uint32_t map_type, uint32_t key_size);
double rs_chain_cost(const double *p, size_t n, uint32_t key_size, int32_t key_off,
		     double miss_cost);

/*
 * A lookup in a complete LPM trie snapshot as a decision tree (lpm_tree.c): a binary search,
 * weighted by the site profile `sp` (may be NULL), over the intervals of addresses with the
 * same longest match; leaves set r0 to a pool copy of the value or 0 (`values` false: a
 * present match takes the original `call`); a key whose prefixlen is not the full width
 * takes the call.  -E2BIG when more than `max_intervals` intervals (or a branch out of range),
 * -EOPNOTSUPP for key layouts it does not handle.  *out is allocated; branches are local.
 */
int rs_lpm_tree_emit(struct rs_opt_ctx *ctx, const struct rs_map_snapshot *m,
		     const struct rs_site_profile *sp, int32_t key_off, bool values,
		     const struct bpf_insn *call, size_t max_intervals,
		     struct bpf_insn **out, size_t *out_cnt, size_t *n_intervals);

/*
 * The same tree for an exact-key map of the hash family (key of 4/8/12/16 bytes, 4-byte
 * aligned on the stack): present keys give a pool copy of their value (`values`, not for
 * per-CPU maps) or take the original call; every other key gives r0 = 0.
 */
int rs_key_tree_emit(struct rs_opt_ctx *ctx, const struct rs_map_snapshot *m,
		     const struct rs_site_profile *sp, int32_t key_off, bool values,
		     const struct bpf_insn *call, size_t max_intervals,
		     struct bpf_insn **out, size_t *out_cnt, size_t *n_intervals);

/* "k=0a000001 00000020" hex text of a key for remarks (truncated to fit). */
const char *rs_key_str(const uint8_t *key, uint32_t size, char *buf, size_t sz);

/*
 * The frame every map pass runs in: the lookup sites of ctx->prog, one edit list against it,
 * and the instructions an earlier site already rewrote (touched, per instruction).  end()
 * commits the edits when the pass applied anything and err is 0, frees everything, and
 * returns err (or the commit's error).
 */
struct rs_site_walk {
	struct rs_lookup_site *sites;
	size_t n;
	struct rs_edit *e;
	bool *touched;
	size_t applied0;
};
int rs_site_walk_begin(struct rs_opt_ctx *ctx, struct rs_site_walk *w);
int rs_site_walk_end(struct rs_opt_ctx *ctx, struct rs_site_walk *w, int err);

#endif /* RS_PASSES_MAPSITE_H */
