// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_samples.c - the sample data planes under BPF_PROG_TEST_RUN with hand-built packets and
 * maps filled from their scenarios (anchors described in docs/samples.md):
 *   l4lb:     IPIP / IP6IP6 encapsulation (outer header bytes, inner packet intact, XDP_TX,
 *             conn_table consistent with the chosen backend), non-VIP traffic passes;
 *   router:   TTL / hop limit decrement with a valid checksum, MAC rewrite, longest prefix
 *             wins, no route drops, ARP and TTL 1 pass, redirect to another ifindex;
 *   firewall: rule order, blocklists, established state, per-rule counters (TC and XDP);
 *   ceiling builds: same verdicts and output bytes on the same packets;
 *   scenario writes: per-CPU replication and per-CPU lists, PROG_ARRAY values by name;
 *   loaders: attach on a veth, stdin commands, SIGUSR1 updates, clean detach on quit/SIGTERM.
 * Runs in a private network namespace (unshare): test runs use our own loopback device, the
 * veth pair of the loader test lives and dies with it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "instrument/instrument.h"
#include "tests/kernel/ktest.h"

#define MAX_PKT 512

struct pkt {
	uint8_t b[MAX_PKT];
	uint32_t len;
};

struct sample {
	struct bpf_object *obj;
	int prog_fd;
};

static const uint8_t MAC_DST[6] = { 0x02, 0, 0, 0, 0, 0xaa };
static const uint8_t MAC_SRC[6] = { 0x02, 0, 0, 0, 0, 0xbb };

/* ---- packets ---------------------------------------------------------------------------- */

static uint16_t csum(const void *p, size_t n, uint32_t sum)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)b[i] << 8 | b[i + 1];
	if (n & 1)
		sum += (uint32_t)b[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static size_t put_eth(uint8_t *b, uint16_t proto)
{
	memcpy(b, MAC_DST, 6);
	memcpy(b + 6, MAC_SRC, 6);
	b[12] = proto >> 8;
	b[13] = proto & 0xff;
	return 14;
}

/* L4 header + 16 bytes of payload; returns its length. */
static size_t put_l4(uint8_t *b, uint8_t proto, uint16_t sport, uint16_t dport)
{
	size_t hl = proto == IPPROTO_TCP ? 20 : 8;

	memset(b, 0, hl);
	b[0] = sport >> 8;
	b[1] = sport & 0xff;
	b[2] = dport >> 8;
	b[3] = dport & 0xff;
	if (proto == IPPROTO_TCP) {
		b[12] = 5 << 4;
		b[13] = 0x02;		/* SYN */
	} else {
		b[4] = 0;
		b[5] = 8 + 16;
	}
	memcpy(b + hl, "respec-sample-pl", 16);
	return hl + 16;
}

static struct pkt v4(const char *src, const char *dst, uint8_t proto, uint16_t sport,
		     uint16_t dport, uint8_t ttl)
{
	struct pkt p = {};
	uint8_t *ip;
	size_t l4;

	p.len = put_eth(p.b, ETH_P_IP);
	ip = p.b + p.len;
	l4 = put_l4(ip + 20, proto, sport, dport);
	ip[0] = 0x45;
	ip[2] = (20 + l4) >> 8;
	ip[3] = (20 + l4) & 0xff;
	ip[8] = ttl;
	ip[9] = proto;
	assert_int_equal(inet_pton(AF_INET, src, ip + 12), 1);
	assert_int_equal(inet_pton(AF_INET, dst, ip + 16), 1);
	{
		uint16_t c = csum(ip, 20, 0);

		ip[10] = c >> 8;
		ip[11] = c & 0xff;
	}
	p.len += 20 + l4;
	return p;
}

static struct pkt v6(const char *src, const char *dst, uint8_t proto, uint16_t sport,
		     uint16_t dport, uint8_t hops)
{
	struct pkt p = {};
	uint8_t *ip;
	size_t l4;

	p.len = put_eth(p.b, ETH_P_IPV6);
	ip = p.b + p.len;
	l4 = put_l4(ip + 40, proto, sport, dport);
	ip[0] = 0x60;
	ip[4] = l4 >> 8;
	ip[5] = l4 & 0xff;
	ip[6] = proto;
	ip[7] = hops;
	assert_int_equal(inet_pton(AF_INET6, src, ip + 8), 1);
	assert_int_equal(inet_pton(AF_INET6, dst, ip + 24), 1);
	p.len += 40 + l4;
	return p;
}

static struct pkt arp(void)
{
	struct pkt p = {};

	p.len = put_eth(p.b, ETH_P_ARP);
	memcpy(p.b + p.len, "\x00\x01\x08\x00\x06\x04\x00\x01", 8);
	p.len += 28;
	return p;
}

/* ---- objects and runs ------------------------------------------------------------------- */

static void sample_open(struct sample *s, const char *obj_name, const char *sample,
			const char *scenario)
{
	const char *bd = getenv("RS_BUILD_DIR"), *sd = getenv("RS_SOURCE_DIR");
	struct rs_scenario *sc;
	char path[4096];

	snprintf(path, sizeof(path), "%s/bpf/samples/%s.bpf.o", bd ? bd : "build", obj_name);
	s->obj = bpf_object__open_file(path, NULL);
	assert_non_null(s->obj);
	assert_int_equal(bpf_object__load(s->obj), 0);
	s->prog_fd = bpf_program__fd(bpf_object__next_program(s->obj, NULL));
	assert_true(s->prog_fd >= 0);
	snprintf(path, sizeof(path), "%s/bpf/samples/%s/scenarios/%s", sd ? sd : ".", sample,
		 scenario);
	assert_int_equal(rs_scenario_load(path, &sc), 0);
	assert_int_equal(rs_scenario_apply_object(sc, s->obj), 0);
	rs_scenario_free(sc);
}

static void sample_close(struct sample *s)
{
	bpf_object__close(s->obj);
	s->obj = NULL;
}

/* One test run; returns the program's return value, output in *out. */
static int run(const struct sample *s, const struct pkt *in, struct pkt *out)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in->b, .data_size_in = in->len,
		    .data_out = out->b, .data_size_out = sizeof(out->b), .repeat = 1);

	memset(out, 0, sizeof(*out));
	assert_int_equal(bpf_prog_test_run_opts(s->prog_fd, &o), 0);
	out->len = o.data_size_out;
	return (int)o.retval;
}

static int map_fd(const struct sample *s, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(s->obj, name);

	assert_non_null(m);
	return bpf_map__fd(m);
}

/* Sum of a per-CPU __u64 counter (the first 8 bytes of each CPU's value). */
static uint64_t percpu_sum(const struct sample *s, const char *map, uint32_t key)
{
	int ncpu = libbpf_num_possible_cpus(), fd = map_fd(s, map), i;
	uint32_t vs = bpf_map__value_size(bpf_object__find_map_by_name(s->obj, map));
	size_t stride = (vs + 7) & ~7u;
	uint8_t *buf = calloc(ncpu, stride);
	uint64_t sum = 0, v;

	assert_non_null(buf);
	assert_int_equal(bpf_map_lookup_elem(fd, &key, buf), 0);
	for (i = 0; i < ncpu; i++) {
		memcpy(&v, buf + i * stride, 8);
		sum += v;
	}
	free(buf);
	return sum;
}

/* ---- l4lb ------------------------------------------------------------------------------- */

struct lb_backend {
	uint32_t addr[4];
	uint32_t flags;
};

static void check_conn_backend(const struct sample *s, const struct pkt *in, int family,
			       const uint8_t *outer_dst)
{
	uint8_t key[40] = {}, conn[8];
	struct lb_backend be;
	const uint8_t *ip = in->b + 14;
	uint32_t idx;

	if (family == 4) {
		memcpy(key, ip + 12, 4);
		memcpy(key + 16, ip + 16, 4);
		memcpy(key + 32, ip + 20, 4);
		key[36] = ip[9];
	} else {
		memcpy(key, ip + 8, 16);
		memcpy(key + 16, ip + 24, 16);
		memcpy(key + 32, ip + 40, 4);
		key[36] = ip[6];
	}
	key[37] = family;
	assert_int_equal(bpf_map_lookup_elem(map_fd(s, "conn_table"), key, conn), 0);
	memcpy(&idx, conn, 4);
	assert_int_equal(bpf_map_lookup_elem(map_fd(s, "backends"), &idx, &be), 0);
	assert_memory_equal(be.addr, outer_dst, family == 4 ? 4 : 16);
}

static void test_l4lb(void **state)
{
	struct sample s = {};
	struct pkt in, out;
	uint8_t a[16];

	(void)state;
	sample_open(&s, "l4lb", "l4lb", "l4lb-16x64.json");

	/* IPv4 VIP 10.100.0.1:80/tcp -> IPIP to a backend 10.200.0.x */
	in = v4("172.16.1.2", "10.100.0.1", IPPROTO_TCP, 40000, 80, 64);
	assert_int_equal(run(&s, &in, &out), XDP_TX);
	assert_int_equal(out.len, in.len + 20);
	assert_memory_equal(out.b, "\x02\x00\x00\x00\x00\xfe", 6);	/* gateway */
	assert_memory_equal(out.b + 6, MAC_DST, 6);			/* our MAC */
	assert_memory_equal(out.b + 12, "\x08\x00", 2);
	assert_int_equal(out.b[14], 0x45);
	assert_int_equal(out.b[16] << 8 | out.b[17], in.len - 14 + 20);
	assert_int_equal(out.b[22], 64);
	assert_int_equal(out.b[23], IPPROTO_IPIP);
	assert_int_equal(csum(out.b + 14, 20, 0), 0);
	inet_pton(AF_INET, "10.99.0.1", a);
	assert_memory_equal(out.b + 26, a, 4);
	assert_memory_equal(out.b + 30, "\x0a\xc8\x00", 3);		/* 10.200.0.x */
	assert_memory_equal(out.b + 34, in.b + 14, in.len - 14);	/* inner intact */
	check_conn_backend(&s, &in, 4, out.b + 30);
	assert_int_equal(percpu_sum(&s, "stats", 0), 1);

	/* IPv6 VIP 2001:db8:100::1:80/tcp (vip 12) -> IP6IP6 to 2001:db8:200:c::x */
	in = v6("2001:db8:c000::7", "2001:db8:100::1", IPPROTO_TCP, 40001, 80, 64);
	assert_int_equal(run(&s, &in, &out), XDP_TX);
	assert_int_equal(out.len, in.len + 40);
	assert_memory_equal(out.b + 12, "\x86\xdd", 2);
	assert_int_equal(out.b[14] >> 4, 6);
	assert_int_equal(out.b[18] << 8 | out.b[19], in.len - 14);	/* inner hdr + payload */
	assert_int_equal(out.b[20], 41);
	assert_int_equal(out.b[21], 64);
	inet_pton(AF_INET6, "2001:db8:99::1", a);
	assert_memory_equal(out.b + 22, a, 16);
	inet_pton(AF_INET6, "2001:db8:200:c::", a);
	assert_memory_equal(out.b + 38, a, 14);
	assert_memory_equal(out.b + 54, in.b + 14, in.len - 14);
	check_conn_backend(&s, &in, 6, out.b + 38);

	/* the same flow again keeps its backend */
	{
		struct pkt out2;

		assert_int_equal(run(&s, &in, &out2), XDP_TX);
		assert_memory_equal(out2.b, out.b, out.len);
	}

	/* wildcard-port UDP VIP 10.100.0.12 */
	in = v4("172.16.9.9", "10.100.0.12", IPPROTO_UDP, 5000, 12345, 64);
	assert_int_equal(run(&s, &in, &out), XDP_TX);
	assert_memory_equal(out.b + 30, "\x0a\xc8\x0b", 3);		/* 10.200.11.x */

	/* not a VIP: wrong port, unknown address, ARP -> pass unchanged */
	in = v4("172.16.1.2", "10.100.0.1", IPPROTO_TCP, 40000, 81, 64);
	assert_int_equal(run(&s, &in, &out), XDP_PASS);
	assert_int_equal(out.len, in.len);
	assert_memory_equal(out.b, in.b, in.len);
	in = v6("2001:db8:c000::7", "2001:db8:100::99", IPPROTO_TCP, 40001, 80, 64);
	assert_int_equal(run(&s, &in, &out), XDP_PASS);
	in = arp();
	assert_int_equal(run(&s, &in, &out), XDP_PASS);
	assert_int_equal(percpu_sum(&s, "stats", 64 /* STAT_PASS */), 3);
	sample_close(&s);
}

/* ---- router ----------------------------------------------------------------------------- */

static void check_routed_v4(const struct pkt *in, const struct pkt *out, uint8_t nh)
{
	uint8_t dmac[6] = { 0x02, 0, 0, 0, 0x01, nh };

	assert_int_equal(out->len, in->len);
	assert_memory_equal(out->b, dmac, 6);
	assert_memory_equal(out->b + 6, "\x02\x00\x00\x00\x00\x01", 6);
	assert_int_equal(out->b[22], in->b[22] - 1);			/* TTL */
	assert_int_equal(csum(out->b + 14, 20, 0), 0);			/* checksum valid */
	assert_memory_equal(out->b + 14, in->b + 14, 8);			/* before TTL */
	assert_int_equal(out->b[23], in->b[23]);
	assert_memory_not_equal(out->b + 24, in->b + 24, 2);		/* checksum updated */
	assert_memory_equal(out->b + 26, in->b + 26, in->len - 26);
}

static void test_router(void **state)
{
	struct sample s = {};
	struct pkt in, out;

	(void)state;
	sample_open(&s, "router", "router", "router-1k.json");

	in = v4("192.168.1.1", "10.1.2.5", IPPROTO_TCP, 1234, 443, 64);	/* /24 -> nh 3 */
	assert_int_equal(run(&s, &in, &out), XDP_TX);
	check_routed_v4(&in, &out, 3);
	in = v4("192.168.1.1", "10.1.9.9", IPPROTO_UDP, 1234, 53, 2);	/* /16 -> nh 2 */
	assert_int_equal(run(&s, &in, &out), XDP_TX);
	check_routed_v4(&in, &out, 2);
	in = v4("192.168.1.1", "10.200.0.1", IPPROTO_TCP, 1234, 80, 255);	/* /8 -> nh 1 */
	assert_int_equal(run(&s, &in, &out), XDP_TX);
	check_routed_v4(&in, &out, 1);

	in = v6("2001:db8:ffff::1", "2001:db8:1::5", IPPROTO_TCP, 1234, 80, 64);	/* nh 5 */
	assert_int_equal(run(&s, &in, &out), XDP_TX);
	assert_memory_equal(out.b, "\x02\x00\x00\x00\x01\x05", 6);
	assert_int_equal(out.b[21], 63);
	assert_memory_equal(out.b + 22, in.b + 22, in.len - 22);
	in = v6("2001:db8:ffff::1", "2001:db8:2::5", IPPROTO_TCP, 1234, 80, 64);	/* nh 4 */
	assert_int_equal(run(&s, &in, &out), XDP_TX);
	assert_memory_equal(out.b, "\x02\x00\x00\x00\x01\x04", 6);

	/* no route: drop; TTL 1 and ARP: to the stack, unchanged */
	in = v4("192.168.1.1", "11.0.0.1", IPPROTO_TCP, 1234, 80, 64);
	assert_int_equal(run(&s, &in, &out), XDP_DROP);
	in = v6("2001:db8:ffff::1", "2001:dc0::1", IPPROTO_UDP, 1234, 80, 64);
	assert_int_equal(run(&s, &in, &out), XDP_DROP);
	in = v4("192.168.1.1", "10.1.2.5", IPPROTO_TCP, 1234, 443, 1);
	assert_int_equal(run(&s, &in, &out), XDP_PASS);
	assert_memory_equal(out.b, in.b, in.len);
	in = arp();
	assert_int_equal(run(&s, &in, &out), XDP_PASS);
	assert_memory_equal(out.b, in.b, in.len);
	assert_int_equal(percpu_sum(&s, "rt_stats", 5 /* RT_DROP_NO_ROUTE */), 2);

	/* a next hop on another interface: bpf_redirect */
	{
		uint8_t nh[20] = { 0x02, 0, 0, 0, 0x01, 0x07, 0x02, 0, 0, 0, 0, 0x01,
				   0xe7, 0x03, 0, 0, 1, 0, 0, 0 };	/* ifindex 999 */
		uint32_t k = 7;

		assert_int_equal(bpf_map_update_elem(map_fd(&s, "nexthops"), &k, nh, 0), 0);
		memset(nh, 0, sizeof(nh));
		nh[0] = 24;
		inet_pton(AF_INET, "10.7.7.0", nh + 4);
		k = 7;
		assert_int_equal(bpf_map_update_elem(map_fd(&s, "routes4"), nh, &k, 0), 0);
		in = v4("192.168.1.1", "10.7.7.7", IPPROTO_TCP, 1234, 443, 64);
		assert_int_equal(run(&s, &in, &out), XDP_REDIRECT);
	}
	sample_close(&s);
}

/* ---- firewall --------------------------------------------------------------------------- */

static void firewall_checks(const char *obj, int ok, int shot)
{
	struct sample s = {};
	struct pkt in, out;

	sample_open(&s, obj, "firewall", "firewall-100.json");

	/* rule 0 (deny 10.66/16 ssh) comes before rule 1 (allow ssh to 10/8) */
	in = v4("10.66.1.1", "10.1.1.1", IPPROTO_TCP, 1234, 22, 64);
	assert_int_equal(run(&s, &in, &out), shot);
	in = v4("10.5.5.5", "10.1.1.1", IPPROTO_TCP, 1234, 22, 64);
	assert_int_equal(run(&s, &in, &out), ok);
	assert_memory_equal(out.b, in.b, in.len);
	assert_int_equal(percpu_sum(&s, "rule_stats", 0), 1);
	assert_int_equal(percpu_sum(&s, "rule_stats", 1), 1);

	/* the reply is established (conntrack written by the data path), not default-dropped */
	in = v4("10.1.1.1", "10.5.5.5", IPPROTO_TCP, 22, 1234, 64);
	assert_int_equal(run(&s, &in, &out), ok);
	assert_int_equal(percpu_sum(&s, "rule_stats", 2048 + 2 /* established */), 1);
	/* ...while another port falls through to the default (drop) */
	in = v4("10.1.1.1", "10.5.5.5", IPPROTO_TCP, 22, 1235, 64);
	assert_int_equal(run(&s, &in, &out), shot);
	assert_int_equal(percpu_sum(&s, "rule_stats", 2048 /* default */), 1);

	/* port range rule 2 (80-443), UDP rule 3 */
	in = v4("198.51.100.1", "10.9.9.9", IPPROTO_TCP, 5555, 300, 64);
	assert_int_equal(run(&s, &in, &out), ok);
	in = v4("198.51.100.1", "10.9.9.9", IPPROTO_TCP, 5555, 444, 64);
	assert_int_equal(run(&s, &in, &out), shot);
	in = v4("198.51.100.1", "10.0.0.53", IPPROTO_UDP, 5555, 53, 64);
	assert_int_equal(run(&s, &in, &out), ok);
	assert_int_equal(percpu_sum(&s, "rule_stats", 3), 1);

	/* blocklists win over allowing rules */
	in = v4("192.0.2.7", "10.0.0.53", IPPROTO_UDP, 5555, 53, 64);
	assert_int_equal(run(&s, &in, &out), shot);
	in = v6("2001:db8:bad::1", "2001:db8::1", IPPROTO_TCP, 5555, 443, 64);
	assert_int_equal(run(&s, &in, &out), shot);
	assert_int_equal(percpu_sum(&s, "rule_stats", 2048 + 1 /* blocked */), 2);

	/* IPv6 rule 4 */
	in = v6("2001:db8:c000::1", "2001:db8::1", IPPROTO_TCP, 5555, 443, 64);
	assert_int_equal(run(&s, &in, &out), ok);
	in = v6("2001:db8:c000::1", "2001:db8::1", IPPROTO_TCP, 5555, 444, 64);
	assert_int_equal(run(&s, &in, &out), shot);
	assert_int_equal(percpu_sum(&s, "rule_stats", 4), 1);

	/* non-IP passes */
	in = arp();
	assert_int_equal(run(&s, &in, &out), ok);
	sample_close(&s);
}

static void test_firewall_tc(void **state)
{
	(void)state;
	firewall_checks("firewall", TC_ACT_OK, TC_ACT_SHOT);
}

static void test_firewall_xdp(void **state)
{
	(void)state;
	firewall_checks("firewall-xdp", XDP_PASS, XDP_DROP);
}

/* The 2000-rule scenario loads (the verifier accepts the rule loop) and its rules apply. */
static void test_firewall_2000(void **state)
{
	struct sample s = {};
	struct pkt in, out;

	(void)state;
	sample_open(&s, "firewall", "firewall", "firewall-2000.json");
	in = v4("10.5.5.5", "10.1.1.1", IPPROTO_TCP, 1234, 22, 64);
	assert_int_equal(run(&s, &in, &out), TC_ACT_OK);
	in = v4("203.0.113.1", "203.0.113.2", IPPROTO_TCP, 1234, 9, 64);
	assert_int_equal(run(&s, &in, &out), TC_ACT_SHOT);
	assert_int_equal(percpu_sum(&s, "rule_stats", 2048), 1);
	sample_close(&s);
}

/* ---- ceilings --------------------------------------------------------------------------- */

static void compare_ceiling(const char *obj, const char *sample, const char *scenario,
			    const struct pkt *pkts, size_t n)
{
	char ceil[128];
	struct sample a = {}, b = {};
	size_t i;

	snprintf(ceil, sizeof(ceil), "%s-ceiling", obj);
	sample_open(&a, obj, sample, scenario);
	sample_open(&b, ceil, sample, scenario);
	for (i = 0; i < n; i++) {
		struct pkt oa, ob;
		int ra = run(&a, &pkts[i], &oa), rb = run(&b, &pkts[i], &ob);

		if (ra != rb || oa.len != ob.len || memcmp(oa.b, ob.b, oa.len))
			fail_msg("%s vs %s: packet %zu: verdict %d/%d, %u/%u bytes", obj, ceil, i,
				 ra, rb, oa.len, ob.len);
	}
	sample_close(&a);
	sample_close(&b);
}

static void test_ceilings(void **state)
{
	struct pkt lb[] = {
		v4("172.16.1.2", "10.100.0.1", IPPROTO_TCP, 40000, 80, 64),
		v4("172.16.1.3", "10.100.0.2", IPPROTO_TCP, 40000, 443, 64),
		v4("172.16.77.3", "10.100.0.11", IPPROTO_UDP, 999, 53, 64),
		v4("172.16.77.3", "10.100.0.12", IPPROTO_UDP, 999, 7, 64),
		v4("172.16.1.2", "10.100.0.1", IPPROTO_TCP, 40000, 81, 64),
		v6("2001:db8:c000::7", "2001:db8:100::1", IPPROTO_TCP, 40001, 80, 64),
		v6("2001:db8:c000::8", "2001:db8:100::4", IPPROTO_TCP, 40001, 443, 64),
		v6("2001:db8:c000::7", "2001:db8:100::1", IPPROTO_TCP, 40001, 443, 64),
		arp(),
	};
	struct pkt rt[] = {
		v4("192.168.1.1", "10.1.2.5", IPPROTO_TCP, 1234, 443, 64),
		v4("192.168.1.1", "10.1.9.9", IPPROTO_UDP, 1234, 53, 2),
		v4("192.168.1.1", "10.200.0.1", IPPROTO_TCP, 1234, 80, 255),
		v4("192.168.1.1", "11.0.0.1", IPPROTO_TCP, 1234, 80, 64),
		v4("192.168.1.1", "10.1.2.5", IPPROTO_TCP, 1234, 443, 1),
		v4("192.168.1.1", "0.0.0.1", IPPROTO_TCP, 1234, 443, 9),
		v4("192.168.1.1", "255.255.255.255", IPPROTO_UDP, 1234, 443, 9),
		v6("2001:db8:ffff::1", "2001:db8:1::5", IPPROTO_TCP, 1234, 80, 64),
		v6("2001:db8:ffff::1", "2001:db8:2::5", IPPROTO_TCP, 1234, 80, 64),
		v6("2001:db8:ffff::1", "2001:dc0::1", IPPROTO_UDP, 1234, 80, 64),
		v6("2001:db8:ffff::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", IPPROTO_UDP,
		   1, 2, 64),
		arp(),
	};
	struct pkt fw[] = {
		v4("10.66.1.1", "10.1.1.1", IPPROTO_TCP, 1234, 22, 64),
		v4("10.5.5.5", "10.1.1.1", IPPROTO_TCP, 1234, 22, 64),
		v4("10.1.1.1", "10.5.5.5", IPPROTO_TCP, 22, 1234, 64),
		v4("10.1.1.1", "10.5.5.5", IPPROTO_TCP, 22, 1235, 64),
		v4("198.51.100.1", "10.9.9.9", IPPROTO_TCP, 5555, 300, 64),
		v4("198.51.100.1", "10.0.0.53", IPPROTO_UDP, 5555, 53, 64),
		v4("192.0.2.7", "10.0.0.53", IPPROTO_UDP, 5555, 53, 64),
		v6("2001:db8:bad::1", "2001:db8::1", IPPROTO_TCP, 5555, 443, 64),
		v6("2001:db8:c000::1", "2001:db8::1", IPPROTO_TCP, 5555, 443, 64),
		v6("2001:db8:c000::1", "2001:db8::1", IPPROTO_TCP, 5555, 444, 64),
		arp(),
	};
	struct rs_scenario *sc;
	char path[4096];
	json_t *rules;
	size_t nfw = RS_ARRAY_SIZE(fw), cap = nfw + 64, i;
	struct pkt *all = calloc(cap, sizeof(*all));

	(void)state;
	assert_non_null(all);
	compare_ceiling("l4lb", "l4lb", "l4lb-16x64.json", lb, RS_ARRAY_SIZE(lb));
	compare_ceiling("router", "router", "router-1k.json", rt, RS_ARRAY_SIZE(rt));

	/* firewall: the anchors plus one packet aimed at each of the first random IPv4 rules */
	memcpy(all, fw, sizeof(fw));
	snprintf(path, sizeof(path), "%s/bpf/samples/firewall/scenarios/firewall-100.json",
		 getenv("RS_SOURCE_DIR") ? getenv("RS_SOURCE_DIR") : ".");
	assert_int_equal(rs_scenario_load(path, &sc), 0);
	rules = json_object_get(rs_scenario_maps(sc), "rules");
	for (i = 5; i < json_array_size(rules) && nfw < cap; i++) {
		json_t *r = json_object_get(json_array_get(rules, i), "value");
		json_t *lo = json_object_get(r, "dport_lo");
		int proto = (int)json_integer_value(json_object_get(r, "proto"));

		if (json_integer_value(json_object_get(r, "family")) != 4)
			continue;
		all[nfw++] = v4(json_string_value(json_object_get(r, "src")),
				json_string_value(json_object_get(r, "dst")),
				proto == IPPROTO_UDP ? IPPROTO_UDP : IPPROTO_TCP, 4000,
				lo ? (uint16_t)json_integer_value(lo) : 7, 64);
	}
	rs_scenario_free(sc);
	compare_ceiling("firewall", "firewall", "firewall-100.json", all, nfw);
	compare_ceiling("firewall-xdp", "firewall", "firewall-100.json", all, nfw);
	free(all);
}

/* ---- scenario writes that need a kernel: per-CPU replication, PROG_ARRAY by name ------- */

static void test_scenario_kernel_maps(void **state)
{
	int ncpu = libbpf_num_possible_cpus(), pc, pa, i;
	struct rs_scenario_map maps[2];
	struct rs_scenario *sc;
	struct sample s = {};
	uint64_t *vals;
	uint32_t k, id;
	char path[] = "/tmp/rs-test-samples-XXXXXX";
	const char *text =
		"{\"maps\": {\"pc\": [{\"key\": 0, \"value\": 7}, {\"key\": 1, \"value\": [1, 2]}],"
		" \"pa\": [{\"key\": 3, \"value\": \"xdp_l4lb\"}]},"
		" \"updates\": [{\"map\": \"pa\", \"op\": \"delete\", \"key\": 3},"
		"  {\"map\": \"pc\", \"op\": \"update\", \"key\": 0, \"value\": \"hex:0100000000000000\"}]}";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	sample_open(&s, "l4lb", "l4lb", "l4lb-16x64.json");
	pc = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "pc", 4, 8, 4, NULL);
	pa = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "pa", 4, 4, 8, NULL);
	assert_true(pc >= 0 && pa >= 0);
	maps[0] = (struct rs_scenario_map){ .name = "pc", .fd = pc,
		.type = BPF_MAP_TYPE_PERCPU_ARRAY, .key_size = 4, .value_size = 8, .max_entries = 4 };
	maps[1] = (struct rs_scenario_map){ .name = "pa", .fd = pa,
		.type = BPF_MAP_TYPE_PROG_ARRAY, .key_size = 4, .value_size = 4, .max_entries = 8 };
	assert_int_equal(rs_scenario_load(path, &sc), 0);
	unlink(path);
	assert_int_equal(rs_scenario_apply(sc, NULL, maps, 2, s.obj), 0);

	vals = calloc(ncpu, 8);
	assert_non_null(vals);
	k = 0;
	assert_int_equal(bpf_map_lookup_elem(pc, &k, vals), 0);
	for (i = 0; i < ncpu; i++)
		assert_int_equal(vals[i], 7);			/* replicated */
	k = 1;
	assert_int_equal(bpf_map_lookup_elem(pc, &k, vals), 0);
	assert_int_equal(vals[0], 1);
	if (ncpu > 1)
		assert_int_equal(vals[1], 2);			/* one value per CPU */
	k = 3;
	assert_int_equal(bpf_map_lookup_elem(pa, &k, &id), 0);	/* prog arrays read back ids */
	{
		struct bpf_prog_info info = {};
		uint32_t len = sizeof(info);

		assert_int_equal(bpf_obj_get_info_by_fd(s.prog_fd, &info, &len), 0);
		assert_int_equal(id, info.id);
	}
	assert_int_equal(rs_scenario_apply_update(sc, 0, NULL, maps, 2), 0);
	assert_int_equal(bpf_map_lookup_elem(pa, &k, &id), -ENOENT);
	assert_int_equal(rs_scenario_apply_update(sc, 1, NULL, maps, 2), 0);
	k = 0;
	assert_int_equal(bpf_map_lookup_elem(pc, &k, vals), 0);
	assert_int_equal(vals[ncpu - 1], 1);
	free(vals);
	rs_scenario_free(sc);
	close(pc);
	close(pa);
	sample_close(&s);
}

/* ---- loaders ---------------------------------------------------------------------------- */

struct child {
	pid_t pid;
	FILE *in, *out;
};

static pid_t live_child;	/* killed by the teardown when a test fails half-way */

static void spawn(struct child *c, char *const argv[])
{
	int to[2], from[2];

	assert_int_equal(pipe(to), 0);
	assert_int_equal(pipe(from), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (!c->pid) {
		dup2(to[0], STDIN_FILENO);
		dup2(from[1], STDOUT_FILENO);
		close(to[1]);
		close(from[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	live_child = c->pid;
	close(to[0]);
	close(from[1]);
	c->in = fdopen(to[1], "w");
	c->out = fdopen(from[0], "r");
	assert_non_null(c->in);
	assert_non_null(c->out);
}

static void say(struct child *c, const char *line, const char *expect)
{
	char buf[512] = "";

	fprintf(c->in, "%s\n", line);
	fflush(c->in);
	assert_non_null(fgets(buf, sizeof(buf), c->out));
	if (strncmp(buf, expect, strlen(expect)))
		fail_msg("\"%s\": got \"%s\", expected \"%s\"", line, buf, expect);
}

static int reap(struct child *c)
{
	int status = -1;

	fclose(c->in);
	fclose(c->out);
	assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
	live_child = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* fd of the map `name` used by program `prog_id`. */
static int prog_map_fd(uint32_t prog_id, const char *name)
{
	struct bpf_prog_info info = {};
	uint32_t ids[16], len = sizeof(info), i;
	int pfd = bpf_prog_get_fd_by_id(prog_id), fd = -1;

	assert_true(pfd >= 0);
	info.nr_map_ids = RS_ARRAY_SIZE(ids);
	info.map_ids = (uint64_t)(unsigned long)ids;
	assert_int_equal(bpf_obj_get_info_by_fd(pfd, &info, &len), 0);
	for (i = 0; i < info.nr_map_ids && fd < 0; i++) {
		struct bpf_map_info mi = {};
		uint32_t ml = sizeof(mi);
		int mfd = bpf_map_get_fd_by_id(ids[i]);

		assert_true(mfd >= 0);
		assert_int_equal(bpf_obj_get_info_by_fd(mfd, &mi, &ml), 0);
		if (!strcmp(mi.name, name))
			fd = mfd;
		else
			close(mfd);
	}
	close(pfd);
	assert_true(fd >= 0);
	return fd;
}

static void test_loaders(void **state)
{
	const char *bd = getenv("RS_BUILD_DIR"), *sd = getenv("RS_SOURCE_DIR");
	char exe[4096], scen[4096], line[512];
	uint8_t vip3[20] = { 10, 100, 0, 4, [16] = 1, [17] = 187, [18] = 6 }, meta[8];
	uint32_t prog_id = 0, attached = 0;
	int ifindex, vfd;
	struct child c;

	(void)state;
	assert_int_equal(system("ip link add rsv0 type veth peer name rsv1 && "
				"ip link set rsv0 up && ip link set rsv1 up"), 0);
	ifindex = if_nametoindex("rsv0");
	assert_true(ifindex > 0);

	/* l4lb: attach, stdin updates, SIGUSR1 applies the scenario's updates, quit detaches */
	snprintf(exe, sizeof(exe), "%s/bpf/samples/l4lb/l4lb-loader", bd ? bd : "build");
	snprintf(scen, sizeof(scen), "%s/bpf/samples/l4lb/scenarios/l4lb-16x64.json",
		 sd ? sd : ".");
	spawn(&c, (char *const[]){ exe, "--dev", "rsv0", "--scenario", scen, NULL });
	assert_non_null(fgets(line, sizeof(line), c.out));
	assert_int_equal(sscanf(line, "ready prog %u", &prog_id), 1);
	assert_int_equal(bpf_xdp_query_id(ifindex, 0, &attached), 0);
	assert_int_equal(attached, prog_id);
	vfd = prog_map_fd(prog_id, "vip_map");
	assert_int_equal(bpf_map_lookup_elem(vfd, vip3, meta), 0);
	say(&c, "update vip_map {\"v4\": \"10.100.0.77\", \"port\": 80, \"proto\": 6} "
		"{\"vip_idx\": 5}", "ok");
	{
		uint8_t k[20] = { 10, 100, 0, 77, [17] = 80, [18] = 6 };

		assert_int_equal(bpf_map_lookup_elem(vfd, k, meta), 0);
		assert_int_equal(meta[0], 5);
	}
	say(&c, "update vip_map {\"v4\": \"10.100.0.77\", \"port\": \"x\"} {}", "error");
	say(&c, "delete nosuch 1", "error: no map named nosuch");
	kill(c.pid, SIGUSR1);		/* updates[0] deletes VIP 3 (10.100.0.4:443) */
	say(&c, "update ring 1 1", "ok");	/* the command after the signal is served */
	assert_int_equal(bpf_map_lookup_elem(vfd, vip3, meta), -ENOENT);
	fprintf(c.in, "quit\n");
	fflush(c.in);
	assert_int_equal(reap(&c), 0);
	close(vfd);
	assert_int_equal(bpf_xdp_query_id(ifindex, 0, &attached), 0);
	assert_int_equal(attached, 0);

	/* firewall on TC ingress: SIGTERM detaches and removes the clsact qdisc it created */
	snprintf(exe, sizeof(exe), "%s/bpf/samples/firewall/firewall-loader", bd ? bd : "build");
	snprintf(scen, sizeof(scen), "%s/bpf/samples/firewall/scenarios/firewall-2000.json",
		 sd ? sd : ".");
	spawn(&c, (char *const[]){ exe, "--dev", "rsv1", "--scenario", scen, NULL });
	assert_non_null(fgets(line, sizeof(line), c.out));
	assert_non_null(strstr(line, "tc_firewall dev rsv1 tc"));
	assert_int_equal(system("tc filter show dev rsv1 ingress | grep -q tc_firewall"), 0);
	kill(c.pid, SIGTERM);
	assert_int_equal(reap(&c), 0);
	assert_int_not_equal(system("tc qdisc show dev rsv1 | grep -q clsact"), 0);

	/* bad arguments: exit 2 (usage), unknown device: 1 */
	spawn(&c, (char *const[]){ exe, "--dev", "rsv1", NULL });
	assert_int_equal(reap(&c), 2);
	spawn(&c, (char *const[]){ exe, "--dev", "nosuchdev0", "--scenario", scen, NULL });
	assert_int_equal(reap(&c), 1);
	assert_int_equal(system("ip link del rsv0"), 0);
}

static int loaders_teardown(void **state)
{
	(void)state;
	if (live_child > 0) {
		kill(live_child, SIGKILL);
		waitpid(live_child, NULL, 0);
		live_child = 0;
	}
	if (system("ip link show rsv0 >/dev/null 2>&1") == 0 && system("ip link del rsv0"))
		return -1;
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_l4lb),
		cmocka_unit_test(test_router),
		cmocka_unit_test(test_firewall_tc),
		cmocka_unit_test(test_firewall_xdp),
		cmocka_unit_test(test_firewall_2000),
		cmocka_unit_test(test_ceilings),
		cmocka_unit_test(test_scenario_kernel_maps),
		cmocka_unit_test_teardown(test_loaders, loaders_teardown),
	};
	int ret = ktest_start();

	if (ret)
		return ret;
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
