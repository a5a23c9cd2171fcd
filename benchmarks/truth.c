// SPDX-License-Identifier: BSD-2-Clause
/*
 * truth.c - the true top-k flows of a generated trace, for hot-key recall checks.
 *
 * Counts are kept per flow id; distinct ids can derive the same 5-tuple when a template is
 * narrow, so ids are turned into tuples, equal tuples merged, and only then ranked.  Ties are
 * broken by the tuple so the output is deterministic.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "benchmarks/tracegen_int.h"

struct entry {
	uint8_t key[38];		/* fam, proto, src[16], dst[16], sport, dport */
	uint64_t count;
};

static void make_key(const struct rs_flow *f, uint8_t *key)
{
	key[0] = f->fam;
	key[1] = f->proto;
	memcpy(key + 2, f->src, 16);
	memcpy(key + 18, f->dst, 16);
	key[34] = f->sport >> 8;
	key[35] = f->sport;
	key[36] = f->dport >> 8;
	key[37] = f->dport;
}

static int cmp_key(const void *a, const void *b)
{
	return memcmp(((const struct entry *)a)->key, ((const struct entry *)b)->key, 38);
}

static int cmp_count(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return cmp_key(a, b);
}

static json_t *flow_json(const struct entry *e, uint64_t total)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	int af = e->key[0] == RS_FAM_V4 ? AF_INET : AF_INET6;
	uint8_t proto = e->key[1];
	uint16_t sport = e->key[34] << 8 | e->key[35];
	uint16_t dport = e->key[36] << 8 | e->key[37];
	const char *pname;
	json_t *o;

	inet_ntop(af, e->key + 2, src, sizeof(src));
	inet_ntop(af, e->key + 18, dst, sizeof(dst));
	pname = proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" :
		af == AF_INET ? "icmp" : "icmpv6";
	o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:f}", "proto", pname,
		      "family", af == AF_INET ? "ipv4" : "ipv6", "src", src, "dst", dst,
		      "packets", (json_int_t)e->count,
		      "share", total ? (double)e->count / total : 0.0);
	if (!o)
		return NULL;
	if (proto == IPPROTO_ICMP) {
		json_object_set_new(o, "id", json_integer(sport));
	} else {
		json_object_set_new(o, "sport", json_integer(sport));
		json_object_set_new(o, "dport", json_integer(dport));
	}
	return o;
}

json_t *rs_truth_top(const struct rs_truth_src *s, int phase, size_t k, uint64_t *flow_packets)
{
	struct entry *v = NULL;
	size_t n = 0, cap = 0, i, j;
	uint64_t total = 0;
	json_t *arr = NULL;
	struct rs_flow f;
	uint32_t id;
	int fam, p;

	for (fam = 0; fam < 2; fam++) {
		if (!s->tr->ntmpl[fam])
			continue;
		for (id = 0; id < s->flows; id++) {
			uint64_t c = 0;

			for (p = 0; p < s->phases; p++)
				if (phase < 0 || phase == p)
					c += s->counts[((size_t)p * 2 + fam) * s->flows + id];
			if (!c)
				continue;
			if (n == cap) {
				struct entry *nv;

				cap = cap ? cap * 2 : 1024;
				nv = realloc(v, cap * sizeof(*v));
				if (!nv)
					goto out;
				v = nv;
			}
			rs_flow_derive(s->tr, s->seed, fam, id, &f);
			make_key(&f, v[n].key);
			v[n].count = c;
			total += c;
			n++;
		}
	}
	if (n) {
		qsort(v, n, sizeof(*v), cmp_key);
		for (i = 0, j = 1; j < n; j++) {
			if (!memcmp(v[i].key, v[j].key, sizeof(v[i].key)))
				v[i].count += v[j].count;
			else
				v[++i] = v[j];
		}
		n = i + 1;
		qsort(v, n, sizeof(*v), cmp_count);
	}
	arr = json_array();
	if (!arr)
		goto out;
	for (i = 0; i < n && i < k; i++) {
		if (json_array_append_new(arr, flow_json(&v[i], total))) {
			json_decref(arr);
			arr = NULL;
			goto out;
		}
	}
	if (flow_packets)
		*flow_packets = total;
out:
	free(v);
	return arr;
}
