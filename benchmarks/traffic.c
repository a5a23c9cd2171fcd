// SPDX-License-Identifier: BSD-2-Clause
/*
 * traffic.c - parse the "traffic" section of a scenario (docs/scenario.md) into flow templates
 * per address family and packet-mix shares, and derive concrete flows from them.
 *
 * Templates whose addresses are IPv4 go to the IPv4 family, IPv6 ones to the IPv6 family.  When
 * the mix asks for IPv6 but no template has IPv6 addresses, IPv6 versions of the IPv4 templates
 * are made inside 2001:db8::/96 (the IPv4 address in the low 32 bits), so every scenario can
 * exercise the IPv6 path.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchmarks/tracegen_int.h"
#include "optimizer/common.h"

static const uint8_t v6_of_v4_prefix[12] = { 0x20, 0x01, 0x0d, 0xb8 };

/* "1.2.3.4", "10.0.0.0/8", "2001:db8::/32" -> family, bytes, prefix length. */
static int parse_prefix(const char *s, int *fam, uint8_t *addr, uint8_t *plen)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	long len = -1;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash) {
		*slash = 0;
		len = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1)
			return -EINVAL;
	}
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, buf, addr) == 1) {
		*fam = RS_FAM_V4;
		if (len < 0)
			len = 32;
		if (len > 32)
			return -EINVAL;
	} else if (inet_pton(AF_INET6, buf, addr) == 1) {
		*fam = RS_FAM_V6;
		if (len < 0)
			len = 128;
		if (len > 128)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	*plen = len;
	return 0;
}

/* 80, "80", "1000-2000" -> [lo, hi]; absent -> defaults. */
static int parse_ports(json_t *v, uint16_t *lo, uint16_t *hi)
{
	const char *s;
	char *end;
	long a, b;

	if (json_is_integer(v)) {
		a = b = json_integer_value(v);
	} else if (json_is_string(v)) {
		s = json_string_value(v);
		a = strtol(s, &end, 10);
		if (end == s)
			return -EINVAL;
		if (*end == '-') {
			s = end + 1;
			b = strtol(s, &end, 10);
			if (end == s)
				return -EINVAL;
		} else {
			b = a;
		}
		if (*end)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (a < 0 || b > 65535 || a > b)
		return -EINVAL;
	*lo = a;
	*hi = b;
	return 0;
}

static int parse_proto(json_t *v, uint8_t *proto)
{
	const char *s = json_string_value(v);

	if (!s)
		return -EINVAL;
	if (!strcmp(s, "tcp"))
		*proto = IPPROTO_TCP;
	else if (!strcmp(s, "udp"))
		*proto = IPPROTO_UDP;
	else if (!strcmp(s, "icmp") || !strcmp(s, "icmpv6") || !strcmp(s, "icmp6"))
		*proto = IPPROTO_ICMP;
	else
		return -EINVAL;
	return 0;
}

static int add_tmpl(struct rs_traffic *tr, int fam, const struct rs_tmpl *t)
{
	struct rs_tmpl *n;

	n = realloc(tr->tmpl[fam], (tr->ntmpl[fam] + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	tr->tmpl[fam] = n;
	n[tr->ntmpl[fam]] = *t;
	tr->wsum[fam] += t->weight;
	n[tr->ntmpl[fam]].cum = tr->wsum[fam];
	tr->ntmpl[fam]++;
	return 0;
}

static int parse_flow(struct rs_traffic *tr, json_t *o, const char *name, size_t i)
{
	struct rs_tmpl t = { .weight = 1, .sport_lo = 1024, .sport_hi = 65535,
			     .dport_lo = 1, .dport_hi = 65535 };
	int sfam = -1, dfam = -1;
	const char *key;
	json_t *v;

	if (!json_is_object(o)) {
		rs_warn("%s: traffic.flows[%zu]: not an object", name, i);
		return -EINVAL;
	}
	if (!json_object_get(o, "dst")) {
		rs_warn("%s: traffic.flows[%zu]: missing 'dst'", name, i);
		return -EINVAL;
	}
	t.proto = IPPROTO_TCP;
	json_object_foreach(o, key, v) {
		int err = 0;

		if (!strcmp(key, "weight")) {
			if (!json_is_number(v) || json_number_value(v) <= 0)
				err = -EINVAL;
			else
				t.weight = json_number_value(v);
		} else if (!strcmp(key, "proto")) {
			err = parse_proto(v, &t.proto);
		} else if (!strcmp(key, "src")) {
			err = json_is_string(v) ?
			      parse_prefix(json_string_value(v), &sfam, t.src, &t.src_plen) : -EINVAL;
		} else if (!strcmp(key, "dst")) {
			err = json_is_string(v) ?
			      parse_prefix(json_string_value(v), &dfam, t.dst, &t.dst_plen) : -EINVAL;
		} else if (!strcmp(key, "sport")) {
			err = parse_ports(v, &t.sport_lo, &t.sport_hi);
		} else if (!strcmp(key, "dport")) {
			err = parse_ports(v, &t.dport_lo, &t.dport_hi);
		} else {
			rs_warn("%s: traffic.flows[%zu]: unknown field '%s'", name, i, key);
			return -EINVAL;
		}
		if (err) {
			rs_warn("%s: traffic.flows[%zu].%s: invalid value", name, i, key);
			return -EINVAL;
		}
	}
	if (sfam < 0) {
		/* Default clients: 172.16.0.0/12 or 2001:db8:c000::/36. */
		sfam = dfam;
		memset(t.src, 0, 16);
		if (dfam == RS_FAM_V4) {
			t.src[0] = 172;
			t.src[1] = 16;
			t.src_plen = 12;
		} else {
			memcpy(t.src, (uint8_t[]){ 0x20, 0x01, 0x0d, 0xb8, 0xc0 }, 5);
			t.src_plen = 36;
		}
	}
	if (sfam != dfam) {
		rs_warn("%s: traffic.flows[%zu]: 'src' and 'dst' are of different address families",
			name, i);
		return -EINVAL;
	}
	return add_tmpl(tr, dfam, &t);
}

static int parse_share(json_t *mix, const char *key, double *out, const char *name)
{
	json_t *v = json_object_get(mix, key);

	if (!v)
		return 0;
	if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1) {
		rs_warn("%s: traffic.mix.%s: must be a number in [0, 1]", name, key);
		return -EINVAL;
	}
	*out = json_number_value(v);
	return 1;
}

static int parse_mix(struct rs_traffic *tr, json_t *mix, const char *name, bool *has_v6)
{
	static const char *const known[] = { "ipv6", "icmp", "arp", "vlan", "miss" };
	const char *key;
	json_t *v;
	size_t i;
	int err;

	*has_v6 = false;
	if (!mix)
		return 0;
	if (!json_is_object(mix)) {
		rs_warn("%s: traffic.mix: not an object", name);
		return -EINVAL;
	}
	json_object_foreach(mix, key, v) {
		for (i = 0; i < RS_ARRAY_SIZE(known); i++)
			if (!strcmp(key, known[i]))
				break;
		if (i == RS_ARRAY_SIZE(known)) {
			rs_warn("%s: traffic.mix: unknown field '%s'", name, key);
			return -EINVAL;
		}
	}
	err = parse_share(mix, "ipv6", &tr->p_ipv6, name);
	if (err < 0)
		return err;
	*has_v6 = err > 0;
	if (parse_share(mix, "icmp", &tr->p_icmp, name) < 0 ||
	    parse_share(mix, "arp", &tr->p_arp, name) < 0 ||
	    parse_share(mix, "vlan", &tr->p_vlan, name) < 0 ||
	    parse_share(mix, "miss", &tr->p_miss, name) < 0)
		return -EINVAL;
	if (tr->p_icmp + tr->p_arp + tr->p_miss > 1.0 + 1e-9) {
		rs_warn("%s: traffic.mix: icmp + arp + miss exceed 1", name);
		return -EINVAL;
	}
	return 0;
}

/* IPv6 twins of the IPv4 templates, inside 2001:db8::/96. */
static int synth_v6(struct rs_traffic *tr)
{
	struct rs_tmpl t;
	size_t i;
	int err;

	for (i = 0; i < tr->ntmpl[RS_FAM_V4]; i++) {
		t = tr->tmpl[RS_FAM_V4][i];
		memmove(t.src + 12, t.src, 4);
		memmove(t.dst + 12, t.dst, 4);
		memcpy(t.src, v6_of_v4_prefix, 12);
		memcpy(t.dst, v6_of_v4_prefix, 12);
		t.src_plen += 96;
		t.dst_plen += 96;
		err = add_tmpl(tr, RS_FAM_V6, &t);
		if (err)
			return err;
	}
	return 0;
}

int rs_traffic_parse(json_t *traffic, const char *name, struct rs_traffic *tr)
{
	json_t *flows, *o;
	bool has_v6;
	size_t i;
	int err;

	memset(tr, 0, sizeof(*tr));
	name = name ?: "scenario";
	if (!json_is_object(traffic)) {
		rs_warn("%s: no \"traffic\" section", name);
		return -EINVAL;
	}
	flows = json_object_get(traffic, "flows");
	if (!json_is_array(flows) || !json_array_size(flows)) {
		rs_warn("%s: traffic.flows: missing or empty", name);
		return -EINVAL;
	}
	json_array_foreach(flows, i, o) {
		err = parse_flow(tr, o, name, i);
		if (err)
			goto fail;
	}
	err = parse_mix(tr, json_object_get(traffic, "mix"), name, &has_v6);
	if (err)
		goto fail;
	if (!has_v6)	/* no explicit share: as the templates' weights say */
		tr->p_ipv6 = tr->wsum[RS_FAM_V6] / (tr->wsum[RS_FAM_V4] + tr->wsum[RS_FAM_V6]);
	if (!tr->ntmpl[RS_FAM_V4] && tr->p_ipv6 < 1) {
		rs_info("%s: traffic: no IPv4 template, all IP traffic is IPv6", name);
		tr->p_ipv6 = 1;
	}
	if (!tr->ntmpl[RS_FAM_V6] && tr->p_ipv6 > 0) {
		err = synth_v6(tr);
		if (err)
			goto fail;
	}
	return 0;
fail:
	rs_traffic_free(tr);
	return err;
}

void rs_traffic_free(struct rs_traffic *tr)
{
	free(tr->tmpl[0]);
	free(tr->tmpl[1]);
	memset(tr, 0, sizeof(*tr));
}

static bool in_prefix(const uint8_t *addr, const uint8_t *pfx, unsigned int plen)
{
	unsigned int full = plen / 8, rem = plen % 8;

	if (memcmp(addr, pfx, full))
		return false;
	if (!rem)
		return true;
	return !((addr[full] ^ pfx[full]) & (uint8_t)(0xff << (8 - rem)));
}

bool rs_traffic_dst_covered(const struct rs_traffic *tr, int fam, const uint8_t *addr)
{
	size_t i;

	for (i = 0; i < tr->ntmpl[fam]; i++)
		if (in_prefix(addr, tr->tmpl[fam][i].dst, tr->tmpl[fam][i].dst_plen))
			return true;
	return false;
}

/* Fill the host bits of a prefix with random bits from h0/h1. */
static void fill_host(uint8_t *out, const uint8_t *pfx, unsigned int plen, unsigned int bytes,
		      uint64_t h0, uint64_t h1)
{
	uint8_t rnd[16];
	unsigned int i;

	memcpy(rnd, &h0, 8);
	memcpy(rnd + 8, &h1, 8);
	memset(out, 0, 16);
	for (i = 0; i < bytes; i++) {
		uint8_t mask;

		if (plen >= 8 * (i + 1))
			mask = 0xff;
		else if (plen <= 8 * i)
			mask = 0;
		else
			mask = 0xff << (8 - (plen - 8 * i));
		out[i] = (pfx[i] & mask) | (rnd[i] & ~mask);
	}
}

static uint16_t pick_port(uint16_t lo, uint16_t hi, uint64_t h)
{
	return lo + h % ((uint32_t)hi - lo + 1);
}

void rs_flow_derive(const struct rs_traffic *tr, uint64_t seed, int fam, uint32_t id,
		    struct rs_flow *f)
{
	uint64_t h = rs_mix64(seed ^ rs_mix64(((uint64_t)fam << 32 | id) + 0x5eed));
	const struct rs_tmpl *t = tr->tmpl[fam];
	unsigned int bytes = fam == RS_FAM_V4 ? 4 : 16;
	double u = (rs_mix64(h + 1) >> 11) * 0x1.0p-53 * tr->wsum[fam];
	size_t lo = 0, hi = tr->ntmpl[fam] - 1;

	while (lo < hi) {	/* first template with cum > u */
		size_t mid = (lo + hi) / 2;

		if (t[mid].cum > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	t += lo;
	f->fam = fam;
	f->proto = t->proto;
	f->hash = h;
	fill_host(f->src, t->src, t->src_plen, bytes, rs_mix64(h + 2), rs_mix64(h + 3));
	fill_host(f->dst, t->dst, t->dst_plen, bytes, rs_mix64(h + 4), rs_mix64(h + 5));
	f->sport = pick_port(t->sport_lo, t->sport_hi, rs_mix64(h + 6));
	f->dport = t->proto == IPPROTO_ICMP ? 0 : pick_port(t->dport_lo, t->dport_hi,
							    rs_mix64(h + 7));
}
