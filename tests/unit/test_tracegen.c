// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_tracegen.c - the trace generator: Zipf shape per profile, per-seed determinism, packet
 * validity read back through libpcap (ethertypes, lengths, checksums, mix shares), the shift
 * profile's hot-set change, truth merging and traffic-section errors.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <pcap/pcap.h>

#include "benchmarks/tracegen.h"
#include "optimizer/common.h"

static const char *traffic_full =
	"{ \"flows\": ["
	"  { \"weight\": 8, \"proto\": \"tcp\", \"src\": \"172.16.0.0/12\", \"dst\": \"10.1.0.0/16\", \"dport\": 80 },"
	"  { \"weight\": 2, \"proto\": \"udp\", \"dst\": \"10.1.2.3\", \"dport\": \"1000-2000\" },"
	"  { \"weight\": 2, \"proto\": \"udp\", \"src\": \"2001:db8::/32\", \"dst\": \"2001:db8:1::/48\", \"dport\": 53 },"
	"  { \"weight\": 1, \"proto\": \"icmp\", \"dst\": \"10.1.9.0/24\" } ],"
	"  \"mix\": { \"ipv6\": 0.3, \"icmp\": 0.05, \"arp\": 0.05, \"vlan\": 0.1, \"miss\": 0.1 } }";

static const char *traffic_flows_only =
	"{ \"flows\": [ { \"proto\": \"tcp\", \"dst\": \"10.0.0.0/8\", \"dport\": 443 } ],"
	"  \"mix\": { \"ipv6\": 0 } }";

static json_t *parse(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);

	assert_non_null(j);
	return j;
}

static struct rs_tracegen *gen_new(json_t *traffic, enum rs_trace_profile p, uint64_t packets,
				   uint64_t seed)
{
	RS_OPTS(rs_tracegen_opts, o, .profile = p, .packets = packets, .seed = seed,
		.name = "test");
	struct rs_tracegen *g = NULL;

	assert_int_equal(rs_tracegen_new(traffic, &o, &g), 0);
	assert_non_null(g);
	return g;
}

/* Run a whole trace in memory. */
static void run_all(struct rs_tracegen *g)
{
	uint8_t buf[RS_TRACE_MAX_FRAME];
	uint64_t ts;

	while (rs_tracegen_next(g, buf, &ts) > 0)
		;
}

static double top_share(json_t *truth)
{
	json_t *top = json_object_get(truth, "top");

	assert_true(json_array_size(top) > 0);
	return json_real_value(json_object_get(json_array_get(top, 0), "share"));
}

static void test_profiles(void **state)
{
	enum rs_trace_profile p;

	assert_int_equal(rs_trace_profile_parse("high", &p), 0);
	assert_int_equal(p, RS_TRACE_HIGH);
	assert_int_equal(rs_trace_profile_parse("shift", &p), 0);
	assert_int_equal(p, RS_TRACE_SHIFT);
	assert_int_equal(rs_trace_profile_parse("zipf", &p), -EINVAL);
	assert_string_equal(rs_trace_profile_name(RS_TRACE_LOW), "low");
}

static void test_zipf_shape(void **state)
{
	json_t *t = parse(traffic_flows_only), *truth;
	double share[3];
	int i;

	for (i = 0; i < 3; i++) {
		struct rs_tracegen *g = gen_new(t, (enum rs_trace_profile[]){
			RS_TRACE_HIGH, RS_TRACE_LOW, RS_TRACE_NONE }[i], 200000, 42);

		run_all(g);
		truth = rs_tracegen_truth(g, 10);
		assert_non_null(truth);
		assert_int_equal(json_integer_value(json_object_get(truth, "flow_packets")), 200000);
		share[i] = top_share(truth);
		json_decref(truth);
		rs_tracegen_free(g);
	}
	/* high: s=1.2 over 1k flows puts ~1/4 of packets on the top flow. */
	assert_true(share[0] > 0.15);
	/* low: s=0.7 over 100k flows, about 1%. */
	assert_true(share[1] > 0.003 && share[1] < 0.05);
	/* none: uniform over 1M flows, a handful of packets at most. */
	assert_true(share[2] < 0.0002);
	assert_true(share[0] > 5 * share[1]);
	assert_true(share[1] > 5 * share[2]);
	json_decref(t);
}

static uint64_t fnv_file(const char *path)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	FILE *f = fopen(path, "rb");
	int c;

	assert_non_null(f);
	while ((c = fgetc(f)) != EOF)
		h = (h ^ (uint8_t)c) * 0x100000001b3ULL;
	fclose(f);
	return h;
}

static uint64_t gen_file(json_t *t, uint64_t seed, const char *path)
{
	struct rs_tracegen *g = gen_new(t, RS_TRACE_HIGH, 20000, seed);

	assert_int_equal(rs_tracegen_write_pcap(g, path), 0);
	rs_tracegen_free(g);
	return fnv_file(path);
}

static void test_determinism(void **state)
{
	char path[] = "/tmp/rs-tracegen-XXXXXX";
	json_t *t = parse(traffic_full);
	uint64_t a, b, c;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	a = gen_file(t, 7, path);
	b = gen_file(t, 7, path);
	c = gen_file(t, 8, path);
	unlink(path);
	assert_true(a == b);
	assert_true(a != c);
	json_decref(t);
}

static uint16_t csum(const uint8_t *p, size_t len, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

struct counts {
	unsigned int pkts, arp, vlan, v4, v6, small, large, miss, icmp, tcp_syn;
};

/* Validate one IP packet (ip points at the IP header, room bytes follow it in the frame). */
static void check_ip(const uint8_t *ip, size_t room, bool padded, struct counts *c)
{
	uint32_t pseudo = 0, l4len, iplen;
	const uint8_t *l4, *dst;
	uint8_t proto;
	bool v6 = (ip[0] >> 4) == 6;

	if (!v6) {
		assert_int_equal(ip[0], 0x45);
		iplen = ip[2] << 8 | ip[3];
		assert_true(iplen >= 28 && iplen <= room);
		assert_true(padded || iplen == room);
		assert_int_equal(csum(ip, 20, 0), 0xffff);
		proto = ip[9];
		l4 = ip + 20;
		l4len = iplen - 20;
		dst = ip + 16;
		pseudo = csum(ip + 12, 8, 0) + proto + l4len;
		c->v4++;
		/* template destinations: 10.1.0.0/16 */
		if (proto != 1 && !(dst[0] == 10 && dst[1] == 1))
			c->miss++;
	} else {
		iplen = (ip[4] << 8 | ip[5]) + 40;
		assert_true(iplen <= room && iplen <= 1500);
		assert_true(padded || iplen == room);
		proto = ip[6];
		l4 = ip + 40;
		l4len = iplen - 40;
		dst = ip + 24;
		pseudo = csum(ip + 8, 32, 0) + proto + l4len;
		c->v6++;
		/* template destinations: 2001:db8:1::/48, or the IPv6 twins in 2001:db8::/96 */
		if (proto != 58 && memcmp(dst, "\x20\x01\x0d\xb8\x00\x01", 6) &&
		    memcmp(dst, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\x0a\x01", 14))
			c->miss++;
	}
	assert_true(iplen <= 1500);
	switch (proto) {
	case 6:
		assert_true(l4len >= 20);
		assert_int_equal(csum(l4, l4len, pseudo), 0xffff);
		c->tcp_syn += l4[13] == 0x02;
		break;
	case 17:
		assert_int_equal(l4[4] << 8 | l4[5], l4len);
		assert_int_equal(csum(l4, l4len, pseudo), 0xffff);
		break;
	case 1:
		assert_false(v6);
		assert_int_equal(l4[0], 8);
		assert_int_equal(csum(l4, l4len, 0), 0xffff);
		c->icmp++;
		break;
	case 58:
		assert_true(v6);
		assert_int_equal(l4[0], 128);
		assert_int_equal(csum(l4, l4len, pseudo), 0xffff);
		c->icmp++;
		break;
	default:
		fail_msg("unexpected IP protocol %u", proto);
	}
}

static void test_validity(void **state)
{
	char path[] = "/tmp/rs-tracegen-XXXXXX", errbuf[PCAP_ERRBUF_SIZE];
	json_t *t = parse(traffic_full);
	const unsigned int n = 40000;
	struct pcap_pkthdr *h;
	struct counts c = { 0 };
	const u_char *d;
	struct rs_tracegen *g;
	pcap_t *p;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	g = gen_new(t, RS_TRACE_LOW, n, 3);
	assert_int_equal(rs_tracegen_write_pcap(g, path), 0);
	assert_int_equal(rs_tracegen_stats(g)->packets, n);
	rs_tracegen_free(g);

	p = pcap_open_offline(path, errbuf);
	assert_non_null(p);
	assert_int_equal(pcap_datalink(p), DLT_EN10MB);
	while (pcap_next_ex(p, &h, &d) == 1) {
		uint16_t et;
		size_t l2 = 14;

		c.pkts++;
		assert_int_equal(h->caplen, h->len);
		assert_true(h->len >= RS_TRACE_MIN_FRAME && h->len <= RS_TRACE_MAX_FRAME);
		c.small += h->len <= 128;
		c.large += h->len >= 1400;
		et = d[12] << 8 | d[13];
		if (et == 0x8100) {
			c.vlan++;
			assert_true((d[14] << 8 | d[15]) > 0);
			et = d[16] << 8 | d[17];
			l2 = 18;
		}
		switch (et) {
		case 0x0806:
			c.arp++;
			assert_int_equal(d[l2 + 7], 1);		/* request */
			assert_int_equal(d[l2 + 4], 6);
			break;
		case 0x0800:
		case 0x86dd:
			check_ip(d + l2, h->len - l2, h->len == RS_TRACE_MIN_FRAME, &c);
			break;
		default:
			fail_msg("unexpected ethertype 0x%04x", et);
		}
	}
	pcap_close(p);
	unlink(path);
	assert_int_equal(c.pkts, n);
	/* mix shares within a few standard deviations */
	assert_true(c.arp > n * 0.04 && c.arp < n * 0.06);
	assert_true(c.vlan > n * 0.085 && c.vlan < n * 0.115);
	assert_true(c.v6 > (c.v4 + c.v6) * 0.27 && c.v6 < (c.v4 + c.v6) * 0.33);
	/* ICMP: 5% echo requests plus the icmp template's share of flow packets */
	assert_true(c.icmp > n * 0.05);
	assert_true(c.miss > n * 0.085 && c.miss < n * 0.115);
	/* bimodal sizes */
	assert_true(c.small > n * 0.3);
	assert_true(c.large > n * 0.25);
	assert_true(c.tcp_syn > 0);
	json_decref(t);
}

static bool flow_eq(json_t *a, json_t *b)
{
	const char *keys[] = { "proto", "src", "dst" };
	size_t i;

	for (i = 0; i < 3; i++)
		if (strcmp(json_string_value(json_object_get(a, keys[i])),
			   json_string_value(json_object_get(b, keys[i]))))
			return false;
	return json_integer_value(json_object_get(a, "sport")) ==
	       json_integer_value(json_object_get(b, "sport")) &&
	       json_integer_value(json_object_get(a, "dport")) ==
	       json_integer_value(json_object_get(b, "dport"));
}

static unsigned int overlap(json_t *a, json_t *b)
{
	unsigned int n = 0;
	size_t i, j;

	for (i = 0; i < json_array_size(a); i++)
		for (j = 0; j < json_array_size(b); j++)
			n += flow_eq(json_array_get(a, i), json_array_get(b, j));
	return n;
}

static void test_shift(void **state)
{
	json_t *t = parse(traffic_flows_only), *truth, *ph, *half, *p0, *p1;
	uint8_t buf[RS_TRACE_MAX_FRAME];
	struct rs_tracegen *g;
	uint64_t ts;
	int i;

	/* shift: the top 10 of the two halves have nothing in common */
	g = gen_new(t, RS_TRACE_SHIFT, 100000, 5);
	run_all(g);
	truth = rs_tracegen_truth(g, 10);
	ph = json_object_get(truth, "phases");
	assert_int_equal(json_array_size(ph), 2);
	p0 = json_object_get(json_array_get(ph, 0), "top");
	p1 = json_object_get(json_array_get(ph, 1), "top");
	assert_int_equal(json_array_size(p0), 10);
	assert_int_equal(json_array_size(p1), 10);
	assert_int_equal(overlap(p0, p1), 0);
	/* each half is as skewed as "high" */
	assert_true(json_real_value(json_object_get(json_array_get(p0, 0), "share")) > 0.15);
	assert_true(json_real_value(json_object_get(json_array_get(p1, 0), "share")) > 0.15);
	json_decref(truth);
	rs_tracegen_free(g);

	/* high: the first half's top 10 is (nearly) the whole trace's top 10 */
	g = gen_new(t, RS_TRACE_HIGH, 100000, 5);
	for (i = 0; i < 50000; i++)
		assert_true(rs_tracegen_next(g, buf, &ts) > 0);
	half = rs_tracegen_truth(g, 10);
	run_all(g);
	truth = rs_tracegen_truth(g, 10);
	assert_true(overlap(json_object_get(half, "top"), json_object_get(truth, "top")) >= 8);
	assert_int_equal(json_array_size(json_object_get(truth, "phases")), 1);
	json_decref(half);
	json_decref(truth);
	rs_tracegen_free(g);
	json_decref(t);
}

/* A template with a single 5-tuple: every flow id is the same flow, truth merges them. */
static void test_truth_merge(void **state)
{
	json_t *t = parse("{ \"flows\": [ { \"proto\": \"udp\", \"src\": \"10.9.9.9\","
			  " \"sport\": 7, \"dst\": \"10.0.0.1\", \"dport\": 53 } ] }");
	struct rs_tracegen *g = gen_new(t, RS_TRACE_NONE, 5000, 1);
	json_t *truth, *top;

	run_all(g);
	truth = rs_tracegen_truth(g, 5);
	top = json_object_get(truth, "top");
	assert_int_equal(json_array_size(top), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(top, 0), "packets")),
			 5000);
	assert_string_equal(json_string_value(json_object_get(json_array_get(top, 0), "dst")),
			    "10.0.0.1");
	json_decref(truth);
	rs_tracegen_free(g);
	json_decref(t);
}

static void test_bad_traffic(void **state)
{
	static const char *const bad[] = {
		"{}",
		"{ \"flows\": [] }",
		"{ \"flows\": [ { \"proto\": \"sctp\", \"dst\": \"10.0.0.1\" } ] }",
		"{ \"flows\": [ { \"dst\": \"10.0.0.1\", \"dprot\": 80 } ] }",
		"{ \"flows\": [ { \"src\": \"2001:db8::1\", \"dst\": \"10.0.0.1\" } ] }",
		"{ \"flows\": [ { \"dst\": \"10.0.0.1/33\" } ] }",
		"{ \"flows\": [ { \"dst\": \"10.0.0.1\", \"dport\": \"9-3\" } ] }",
		"{ \"flows\": [ { \"dst\": \"10.0.0.1\" } ], \"mix\": { \"arp\": 0.7, \"miss\": 0.5 } }",
		"{ \"flows\": [ { \"dst\": \"10.0.0.1\" } ], \"mix\": { \"ipx\": 0.1 } }",
	};
	RS_OPTS(rs_tracegen_opts, o, .profile = RS_TRACE_HIGH, .packets = 10);
	struct rs_tracegen *g;
	size_t i;

	for (i = 0; i < RS_ARRAY_SIZE(bad); i++) {
		json_t *t = parse(bad[i]);

		g = (void *)1;
		assert_int_equal(rs_tracegen_new(t, &o, &g), -EINVAL);
		assert_null(g);
		json_decref(t);
	}
	assert_int_equal(rs_tracegen_new(NULL, &o, &g), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_profiles),
		cmocka_unit_test(test_zipf_shape),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_validity),
		cmocka_unit_test(test_shift),
		cmocka_unit_test(test_truth_merge),
		cmocka_unit_test(test_bad_traffic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
