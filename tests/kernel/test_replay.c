// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_replay.c - kernel tests of the replay engine (instrument/replay*.c, timing.c): pcaps
 * built here with libpcap, xdp-tools' xdpfilt objects as programs under test (until the
 * sample data planes exist).  Self against self must not diverge; a copy with one constant
 * changed must be caught at the first packet it treats differently; bad pcaps and missing
 * programs fail with -RS_ERR_FORMAT / -RS_ERR_NOT_FOUND; timing self against self gives a
 * ratio near 1 (reported, bounds kept loose).  Runs in a network namespace of its own.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#define PCAP_DONT_INCLUDE_PCAP_BPF_H
#include <pcap/pcap.h>
#include <pcap/dlt.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/agent.h"
#include "instrument/instrument.h"
#include "tests/kernel/ktest.h"

#define XDPFILT "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_dny_udp.o"

static char dir[] = "/tmp/rs-test-replay-XXXXXX";
static char pcap_path[256], trunc_path[256], garbage_path[256];
static size_t first_udp;	/* 1-based number of the first UDP packet in the pcap */

static uint16_t csum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t s = 0;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += (b[i] << 8) | b[i + 1];
	if (n & 1)
		s += b[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return htons(~s);
}

/* Ethernet + IPv4 + (UDP | ICMP echo) with a payload; returns the length. */
static size_t build_pkt(uint8_t *b, uint8_t proto, uint16_t dport, size_t payload)
{
	static const uint8_t dst[6] = { 2, 0, 0, 0, 0, 2 }, src[6] = { 2, 0, 0, 0, 0, 1 };
	size_t l4 = proto == 17 ? 8 : 8, tot = 20 + l4 + payload;
	uint8_t *ip = b + 14, *l = ip + 20;

	memset(b, 0, 14 + tot);
	memcpy(b, dst, 6);
	memcpy(b + 6, src, 6);
	b[12] = 0x08;
	ip[0] = 0x45;
	ip[2] = tot >> 8;
	ip[3] = tot & 0xff;
	ip[8] = 64;
	ip[9] = proto;
	ip[12] = 10, ip[13] = 250, ip[14] = 0, ip[15] = 1;
	ip[16] = 10, ip[17] = 250, ip[18] = 0, ip[19] = 2;
	*(uint16_t *)(ip + 10) = csum(ip, 20);
	if (proto == 17) {
		l[0] = 0x30, l[1] = 0x39;
		l[2] = dport >> 8, l[3] = dport & 0xff;
		l[4] = (8 + payload) >> 8, l[5] = (8 + payload) & 0xff;
	} else {
		l[0] = 8;	/* echo request */
	}
	memset(l + l4, 0xab, payload);
	return 14 + tot;
}

static void write_pcaps(void)
{
	/* 3 ICMP, then UDP 53, ICMP, UDP 4242, 2 ICMP, UDP 53 ... */
	static const uint8_t protos[] = { 1, 1, 1, 17, 1, 17, 1, 1, 17, 17, 1, 17 };
	static const uint16_t ports[] = { 0, 0, 0, 53, 0, 4242, 0, 0, 53, 123, 0, 9 };
	struct pcap_pkthdr h = {};
	pcap_dumper_t *d;
	uint8_t buf[2048];
	pcap_t *p;
	FILE *f;
	size_t i, rounds;
	long sz;

	p = pcap_open_dead(DLT_EN10MB, 65535);
	assert_non_null(p);
	d = pcap_dump_open(p, pcap_path);
	assert_non_null(d);
	for (rounds = 0; rounds < 20; rounds++) {
		for (i = 0; i < sizeof(protos); i++) {
			h.caplen = h.len = build_pkt(buf, protos[i], ports[i], 18 + 50 * (i % 4));
			if (!first_udp && protos[i] == 17)
				first_udp = rounds * sizeof(protos) + i + 1;
			pcap_dump((u_char *)d, &h, buf);
		}
	}
	pcap_dump_close(d);
	pcap_close(p);

	/* the same file cut in the middle of a packet */
	f = fopen(pcap_path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	fclose(f);
	assert_int_equal(system(NULL) != 0, 1);
	snprintf((char *)buf, sizeof(buf), "head -c %ld %s > %s", sz - 30, pcap_path, trunc_path);
	assert_int_equal(system((char *)buf), 0);

	f = fopen(garbage_path, "wb");
	assert_non_null(f);
	fputs("this is not a pcap file, just some text that is long enough\n", f);
	fclose(f);
}

static int setup(void **state)
{
	/* own network namespace: ingress ifindex 1 is our own lo */
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	if (access(XDPFILT, R_OK)) {
		fprintf(stderr, "SKIP: %s missing (xdp-tools)\n", XDPFILT);
		exit(77);
	}
	assert_non_null(mkdtemp(dir));
	snprintf(pcap_path, sizeof(pcap_path), "%s/t.pcap", dir);
	snprintf(trunc_path, sizeof(trunc_path), "%s/trunc.pcap", dir);
	snprintf(garbage_path, sizeof(garbage_path), "%s/garbage.pcap", dir);
	write_pcaps();
	return 0;
}

static int teardown(void **state)
{
	unlink(pcap_path);
	unlink(trunc_path);
	unlink(garbage_path);
	rmdir(dir);
	return 0;
}

static void test_pcap_errors(void **state)
{
	struct rs_trace tr;

	assert_int_equal(rs_trace_load_pcap(pcap_path, &tr), 0);
	assert_int_equal(tr.cnt, 240);
	rs_trace_free(&tr);
	assert_int_equal(rs_trace_load_pcap(trunc_path, &tr), -RS_ERR_FORMAT);
	assert_int_equal(tr.cnt, 0);
	assert_int_equal(rs_trace_load_pcap(garbage_path, &tr), -RS_ERR_FORMAT);
	assert_int_equal(rs_trace_load_pcap("/nonexistent/x.pcap", &tr), -RS_ERR_FORMAT);
}

static void test_missing_prog(void **state)
{
	struct rs_replay_open_opts oo = { .sz = sizeof(oo), .prog_name = "no_such_prog" };
	struct rs_replay_prog *rp = (void *)1;

	assert_int_equal(rs_replay_open_object(XDPFILT, &oo, &rp), -RS_ERR_NOT_FOUND);
	assert_null(rp);
}

static void test_self(void **state)
{
	RS_OPTS(rs_replay_opts, ro, .max_divergences = 5);
	struct rs_replay_prog *a, *b;
	struct rs_replay_result res;
	struct rs_trace tr;

	assert_int_equal(rs_trace_load_pcap(pcap_path, &tr), 0);
	assert_int_equal(rs_replay_open_object(XDPFILT, NULL, &a), 0);
	assert_int_equal(rs_replay_open_object(XDPFILT, NULL, &b), 0);
	assert_int_not_equal(rs_replay_fd(a), rs_replay_fd(b));
	assert_int_equal(rs_replay_compare(a, b, &tr, &ro, &res), 0);
	assert_int_equal(res.packets, 240);
	assert_int_equal(res.divergences, 0);
	/* every packet got a verdict, the same histogram on both sides */
	assert_memory_equal(res.verdicts_a, res.verdicts_b, sizeof(res.verdicts_a));
	{
		uint64_t sum = 0;
		size_t i;

		char vb[32];

		for (i = 0; i < RS_VERDICT_SLOTS; i++) {
			sum += res.verdicts_a[i];
			if (res.verdicts_a[i])
				fprintf(stderr, "self: %s %llu\n",
					rs_verdict_name(BPF_PROG_TYPE_XDP, rs_verdict_of_slot(i),
							vb, sizeof(vb)),
					(unsigned long long)res.verdicts_a[i]);
		}
		assert_int_equal(sum, 240);
	}
	rs_replay_result_free(&res);
	rs_replay_close(a);
	rs_replay_close(b);
	rs_trace_free(&tr);
}

/* prepare(): the UDP protocol check (ip->protocol != 17) now tests for TCP (6). */
static int mutate(struct bpf_object *obj, struct bpf_program *prog, void *ctx)
{
	const struct bpf_insn *in = bpf_program__insns(prog);
	size_t i, n = bpf_program__insn_cnt(prog);
	struct bpf_insn *c;
	int err;

	c = malloc(n * sizeof(*c));
	assert_non_null(c);
	memcpy(c, in, n * sizeof(*c));
	for (i = 0; i < n; i++)
		if (c[i].code == (BPF_JMP | BPF_JNE | BPF_K) && c[i].imm == 17)
			break;
	assert_true(i < n);
	c[i].imm = 6;
	*(size_t *)ctx = i;
	err = bpf_program__set_insns(prog, c, n);
	free(c);
	return err;
}

/* Allow UDP port 53 in both directions (filter_ports value: flags in the first u64). */
static void allow_port53(struct rs_replay_prog *rp)
{
	int fd = rs_replay_map_fd(rp, "filter_ports");
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info), key = htons(53);
	uint64_t val[1024];
	size_t i;

	/* a per-CPU array: the same flags on every CPU */
	for (i = 0; i < RS_ARRAY_SIZE(val); i++)
		val[i] = 0xf;
	assert_true(fd >= 0);
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	assert_int_equal(info.value_size, 8);
	assert_true(libbpf_num_possible_cpus() <= (int)RS_ARRAY_SIZE(val));
	assert_int_equal(bpf_map_update_elem(fd, &key, val, BPF_ANY), 0);
}

static void test_mutated(void **state)
{
	RS_OPTS(rs_replay_opts, ro, .max_divergences = 3);
	size_t where = (size_t)-1;
	struct rs_replay_open_opts oo = { .sz = sizeof(oo), .prepare = mutate,
					  .prepare_ctx = &where };
	struct rs_replay_prog *a, *b;
	struct rs_replay_result res;
	struct rs_trace tr;

	assert_int_equal(rs_trace_load_pcap(pcap_path, &tr), 0);
	assert_int_equal(rs_replay_open_object(XDPFILT, NULL, &a), 0);
	assert_int_equal(rs_replay_open_object(XDPFILT, &oo, &b), 0);
	assert_int_not_equal(where, (size_t)-1);
	allow_port53(a);
	allow_port53(b);
	assert_int_equal(rs_replay_compare(a, b, &tr, &ro, &res), 0);
	assert_true(res.divergences > 0);
	assert_true(res.div_cnt > 0 && res.div_cnt <= 3);
	assert_int_equal(res.div[0].kind, RS_DIV_PACKET);
	assert_int_equal(res.div[0].packet, first_udp);
	assert_int_not_equal(res.div[0].verdict_a, res.div[0].verdict_b);
	fprintf(stderr, "mutated insn %zu: %zu divergences, first at packet %zu: %s\n", where,
		res.divergences, res.div[0].packet, res.div[0].what);
	rs_replay_result_free(&res);

	/* the maps differ too (hit counters, stats); masking those values hides exactly that */
	{
		struct rs_replay_mask m[2];
		size_t i, n_pkt = 0, n_map = 0, total;

		assert_int_equal(rs_replay_mask_parse("xdp_stats_map:0:64", &m[0]), 0);
		assert_int_equal(rs_replay_mask_parse("filter_ports:0:0x40", &m[1]), 0);
		assert_string_equal(m[1].map, "filter_ports");
		assert_int_equal(m[1].off, 0);
		assert_int_equal(m[1].len, 64);
		assert_int_not_equal(rs_replay_mask_parse("nomap", &m[0]), 0);
		assert_int_equal(rs_replay_mask_parse("xdp_stats_map:0:64", &m[0]), 0);
		ro.max_divergences = 100000;
		ro.masks = NULL;
		assert_int_equal(rs_replay_compare(a, b, &tr, &ro, &res), 0);
		total = res.divergences;
		for (i = 0; i < res.div_cnt; i++) {
			n_pkt += res.div[i].kind == RS_DIV_PACKET;
			n_map += res.div[i].kind == RS_DIV_MAP;
		}
		assert_int_equal(res.div_cnt, total);
		assert_true(n_map > 0);
		/* packet 4, 9 of every 12: UDP 53 passes in A, dropped in B */
		assert_int_equal(n_pkt, 2 * 20);
		rs_replay_result_free(&res);
		ro.masks = m;
		ro.mask_cnt = 2;
		assert_int_equal(rs_replay_compare(a, b, &tr, &ro, &res), 0);
		assert_int_equal(res.divergences, n_pkt);
		rs_replay_result_free(&res);
	}
	rs_replay_close(a);
	rs_replay_close(b);
	rs_trace_free(&tr);
}

static int open_fds(void)
{
	struct dirent *e;
	int n = 0;
	DIR *d;

	d = opendir("/proc/self/fd");
	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_timing(void **state)
{
	RS_OPTS(rs_timing_opts, to, .rounds = 5);
	struct rs_replay_prog *a, *b;
	struct rs_timing_result tm;
	struct rs_trace tr;
	int err, fds_before;

	err = rs_timing_check_stats();
	if (err == -EBUSY) {
		fprintf(stderr, "kernel.bpf_stats_enabled is on: timing refused as designed\n");
		assert_int_equal(rs_replay_time(NULL, NULL, NULL, &to, &tm), -EBUSY);
		return;
	}
	assert_int_equal(rs_trace_load_pcap(pcap_path, &tr), 0);
	assert_int_equal(rs_replay_open_object(XDPFILT, NULL, &a), 0);
	assert_int_equal(rs_replay_open_object(XDPFILT, NULL, &b), 0);
	assert_int_equal(rs_replay_time(a, b, &tr, &to, &tm), 0);
	fprintf(stderr, "timing self vs self (%s, %u rounds x %llu runs): A %.1f ns, B %.1f ns, "
		"ratio %.3f [%.3f, %.3f], driver %.1f ns\n", tm.method, tm.rounds,
		(unsigned long long)tm.runs, tm.a.iqm, tm.b.iqm, tm.ratio.iqm,
		tm.ratio.min, tm.ratio.max, tm.driver.iqm);
	assert_string_equal(tm.method, "driver");
	assert_int_equal(tm.rounds, 5);
	assert_int_equal(tm.driver_errors, 0);
	assert_true(tm.runs >= 1024);		/* at least RS_TIMING_MIN_REPEAT per test run */
	assert_true(tm.runs * tm.rounds >= tr.cnt);	/* every packet timed */
	/* the copies, the driver and its private namespace are gone with their fds (the first
	 * run may leave the process-wide capture hook of rs_fetch_original open: count after) */
	fds_before = open_fds();
	assert_int_equal(rs_replay_time(a, b, &tr, &to, &tm), 0);
	assert_int_equal(open_fds(), fds_before);
	assert_int_equal(tm.copies, 4);		/* default: 4 instances of each */
	assert_true(tm.driver.iqm > 0);
	assert_true(tm.a.iqm > 0 && tm.b.iqm > 0);
	/* loose on purpose: timing noise must not fail the suite */
	assert_true(tm.ratio.iqm > 0.2 && tm.ratio.iqm < 5);

	/* one program alone: the driver too, with its B slots empty, and no fd left behind */
	assert_int_equal(rs_replay_time(a, NULL, &tr, &to, &tm), 0);
	assert_string_equal(tm.method, "driver");
	assert_int_equal(tm.copies, 4);
	assert_int_equal(open_fds(), fds_before);

	/* forced single runs work too */
	to.single = true;
	to.rounds = 2;	/* made odd: 3 */
	assert_int_equal(rs_replay_time(a, b, &tr, &to, &tm), 0);
	assert_string_equal(tm.method, "single");
	assert_int_equal(tm.rounds, 3);
	fprintf(stderr, "single runs: A %.1f ns, B %.1f ns, ratio %.3f, empty %.1f ns\n",
		tm.a.iqm, tm.b.iqm, tm.ratio.iqm, tm.driver.iqm);
	rs_replay_close(a);
	rs_replay_close(b);
	rs_trace_free(&tr);
}

/* Private hash maps get a zero seed (same buckets in every instance); others keep their flags. */
static void test_zero_seed(void **state)
{
	const char *bd = getenv("RS_BUILD_DIR") ?: "build";
	static const struct { const char *map; bool zero; } want[] = {
		{ "vip_map", true }, { "conn_table", true }, { "ring", false }, { "stats", false },
	};
	struct rs_replay_prog *a;
	char path[512];
	size_t i;

	(void)state;
	snprintf(path, sizeof(path), "%s/bpf/samples/l4lb.bpf.o", bd);
	if (access(path, R_OK))
		skip();
	assert_int_equal(rs_replay_open_object(path, NULL, &a), 0);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct bpf_map_info info = {};
		uint32_t len = sizeof(info);
		int fd = rs_replay_map_fd(a, want[i].map);

		assert_true(fd >= 0);
		assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
		assert_int_equal(!!(info.map_flags & BPF_F_ZERO_SEED), want[i].zero);
	}
	rs_replay_close(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pcap_errors),
		cmocka_unit_test(test_missing_prog),
		cmocka_unit_test(test_self),
		cmocka_unit_test(test_mutated),
		cmocka_unit_test(test_timing),
		cmocka_unit_test(test_zero_seed),
	};
	int ret = ktest_start();

	if (ret)
		return ret;
	return cmocka_run_group_tests(tests, setup, teardown);
}
