// SPDX-License-Identifier: BSD-2-Clause
/*
 * lpm.c - longest-prefix match over a snapshot of an LPM_TRIE map, the way the kernel's trie
 * answers a lookup: among the entries whose prefix length is at most the key's and whose
 * first prefixlen bits equal the key's data, the longest one wins.  Keys are a host-order
 * u32 prefixlen followed by the data bytes (struct bpf_lpm_trie_key).  Used by hot_keys to
 * inline the result of a full-key lookup (never a hash: whole keys are compared).
 */
#include <string.h>

#include "optimizer/passes/mapsite.h"

/* the first `bits` bits of a and b are equal */
static bool prefix_eq(const uint8_t *a, const uint8_t *b, uint32_t bits)
{
	uint32_t bytes = bits / 8, rest = bits % 8;
	uint8_t mask;

	if (memcmp(a, b, bytes))
		return false;
	if (!rest)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return ((a[bytes] ^ b[bytes]) & mask) == 0;
}

const uint8_t *rs_lpm_match(const struct rs_map_snapshot *m, const uint8_t *key)
{
	uint32_t data_len, max_bits, want, best_len = 0;
	const uint8_t *best = NULL;
	size_t i;

	if (!m || m->key_size <= 4 || !m->keys || !m->values)
		return NULL;
	data_len = m->key_size - 4;
	max_bits = data_len * 8;
	memcpy(&want, key, 4);
	if (want > max_bits)
		return NULL;		/* the kernel refuses such a key: no match */
	for (i = 0; i < m->cnt; i++) {
		const uint8_t *k = m->keys + i * m->key_size;
		uint32_t plen;

		memcpy(&plen, k, 4);
		if (plen > want || plen > max_bits || (best && plen <= best_len))
			continue;
		if (!prefix_eq(k + 4, key + 4, plen))
			continue;
		best = m->values + i * m->value_stride;
		best_len = plen;
	}
	return best;
}

const uint8_t *rs_lpm_leaf(const struct rs_map_snapshot *m, const uint8_t *key, uint8_t *mask)
{
	const uint8_t *v = rs_lpm_match(m, key), *best = NULL;
	uint32_t plen = 0, i, q;

	if (!v)
		return NULL;
	for (i = 0; i < m->cnt; i++) {		/* the matching entry */
		if (m->values + i * m->value_stride == v) {
			best = m->keys + i * m->key_size;
			break;
		}
	}
	if (!best)
		return NULL;
	memcpy(&plen, best, 4);
	for (i = 0; i < m->cnt; i++) {		/* anything strictly inside it? */
		const uint8_t *k = m->keys + i * m->key_size;

		memcpy(&q, k, 4);
		if (q > plen && prefix_eq(k + 4, best + 4, plen))
			return NULL;
	}
	memset(mask, 0, m->key_size);
	memset(mask, 0xff, 4);
	memset(mask + 4, 0xff, plen / 8);
	if (plen % 8)
		mask[4 + plen / 8] = (uint8_t)(0xff << (8 - plen % 8));
	return v;
}

bool rs_lpm_gap(const struct rs_map_snapshot *m, const uint8_t *key, uint8_t *mask)
{
	uint32_t data_len, want, bits, i;

	if (!m || m->key_size <= 4 || !m->complete || rs_lpm_match(m, key))
		return false;
	data_len = m->key_size - 4;
	memcpy(&want, key, 4);
	if (want != data_len * 8)
		return false;
	/* the shortest block around the key that no entry overlaps */
	for (bits = 0; bits <= data_len * 8; bits++) {
		bool hit = false;

		for (i = 0; i < m->cnt && !hit; i++) {
			const uint8_t *k = m->keys + i * m->key_size;
			uint32_t plen;

			memcpy(&plen, k, 4);
			hit = prefix_eq(k + 4, key + 4, plen < bits ? plen : bits);
		}
		if (!hit)
			break;
	}
	if (bits > data_len * 8)
		return false;
	memset(mask, 0, m->key_size);
	memset(mask, 0xff, 4);
	memset(mask + 4, 0xff, bits / 8);
	if (bits % 8)
		mask[4 + bits / 8] = (uint8_t)(0xff << (8 - bits % 8));
	return true;
}
