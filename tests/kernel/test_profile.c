// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_profile.c - profiling against the kernel:
 *   - the instrumented variant of every sample data plane loads, replays with 0 divergences
 *     against the original, samples about 1 in N packets, and counts keys and branches
 *     (counts of the always-taken lookup equal the sampled packets that reached it);
 *   - a cost window enables stats only through its fd and leaves kernel.bpf_stats_enabled
 *     as it was;
 *   - `respec profile` on a live l4lb loaded by its loader in a private network namespace,
 *     with veth traffic: hot keys of the connection table, branch probabilities, cost,
 *     churn of the scenario updates sent during the window, and afterwards the original is
 *     attached again and the journal entry closed.
 * Everything created (namespace, veth, loader, sender, files) is removed, also on failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <jansson.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <math.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent/agent.h"
#include "instrument/instrument.h"
#include "optimizer/optimizer.h"

static char ns[64], veth_a[IF_NAMESIZE], veth_b[IF_NAMESIZE], tmpdir[128];
static pid_t loader_pid, sender_pid;

static void log_stderr(enum rs_log_level level, const char *fmt, va_list ap)
{
	if (level == RS_LOG_DEBUG)
		return;
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static const char *bd(void) { return getenv("RS_BUILD_DIR") ?: "build"; }
static const char *sd(void) { return getenv("RS_SOURCE_DIR") ?: "."; }

/* A high-profile trace of a sample (generated once per sample). */
static void trace_for(const char *sample, const char *scenario, size_t packets, char *pcap,
		      size_t sz)
{
	char cmd[8192];

	snprintf(pcap, sz, "%s/%s.pcap", tmpdir, sample);
	if (!access(pcap, R_OK))
		return;
	snprintf(cmd, sizeof(cmd), "%s/tools/respec trace gen --scenario %s/bpf/samples/%s/"
		 "scenarios/%s --profile high --packets %zu --seed 11 -o %s >/dev/null", bd(),
		 sd(), sample, scenario, packets, pcap);
	assert_int_equal(system(cmd), 0);
}

static const struct rs_site_profile *site_of(const struct rs_profile *p, uint32_t map_idx)
{
	size_t i;

	for (i = 0; i < p->site_cnt; i++)
		if (p->sites[i].map_idx == map_idx && p->sites[i].lookups)
			return &p->sites[i];
	return NULL;
}

static void replay_sample(const char *obj, const char *sample, const char *scenario,
			  const char *flow_map, uint32_t key_size, uint32_t rate, bool percpu,
			  bool inline_copy)
{
	/* bursts of 8: enough bursts in 20000 packets for the count check below (at the
	 * default 64 and 1 in 8 there are ~40, whose count alone varies by ~10%) */
	struct rs_profiler_opts po = { .sz = sizeof(po), .sample_rate = rate, .burst = 8,
				       .percpu_countdown = percpu, .inline_copy = inline_copy };
	struct rs_replay_opts ro = { .sz = sizeof(ro), .max_divergences = 3 };
	struct rs_replay_prog *a = NULL, *b = NULL;
	struct rs_replay_result res = {};
	const struct rs_instr_layout *l;
	const struct rs_site_profile *s;
	struct rs_scenario *sc = NULL;
	struct rs_profiler *pr = NULL;
	struct rs_trace tr = {};
	struct rs_profile prof;
	char path[4096], scen[4096], pcap[4096];
	uint64_t total = 0, before;
	size_t i, j, flow_idx = SIZE_MAX;

	snprintf(path, sizeof(path), "%s/bpf/samples/%s", bd(), obj);
	snprintf(scen, sizeof(scen), "%s/bpf/samples/%s/scenarios/%s", sd(), sample, scenario);
	trace_for(sample, scenario, 20000, pcap, sizeof(pcap));
	assert_int_equal(rs_trace_load_pcap(pcap, &tr), 0);
	assert_int_equal(rs_scenario_load(scen, &sc), 0);
	{
		struct rs_replay_open_opts oo = { .sz = sizeof(oo), .scenario = sc };

		assert_int_equal(rs_replay_open_object(path, &oo, &a), 0);
	}
	assert_int_equal(rs_profiler_replay_open(a, &po, &pr, &b, NULL), 0);
	l = rs_profiler_layout(pr);
	assert_int_equal(l->call, !inline_copy);	/* every sample takes the call layout */
	assert_true(l->site_cnt > 0);
	assert_true(l->branch_cnt > 0);
	assert_int_equal(rs_replay_compare(a, b, &tr, &ro, &res), 0);
	if (res.divergences)
		fail_msg("%s: %zu divergences, first: %s", obj, res.divergences,
			 res.div_cnt ? res.div[0].what : "?");
	assert_int_equal(rs_profiler_collect(pr, b, 10, &prof), 0);
	/* 1 in rate packets sampled: within 25% of the expectation (20000 packets) */
	if (fabs((double)prof.packets - (double)tr.cnt / rate) > 0.25 * tr.cnt / rate)
		fail_msg("%s: %llu sampled of %zu at 1 in %u", obj,
			 (unsigned long long)prof.packets, tr.cnt, rate);
	for (i = 0; i < rs_profiler_prog(pr)->map_cnt; i++)
		if (!strcmp(rs_profiler_prog(pr)->maps[i].name, flow_map))
			flow_idx = i;
	assert_true(flow_idx != SIZE_MAX);
	s = site_of(&prof, (uint32_t)flow_idx);
	assert_non_null(s);
	assert_int_equal(s->key_size, key_size);
	assert_true(s->key_cnt == 10);
	for (j = 0; j < s->key_cnt; j++) {
		total += s->counts[j];
		if (j)
			assert_true(s->counts[j] <= s->counts[j - 1]);
	}
	assert_true(total <= s->lookups);
	assert_true(s->lookups <= prof.packets);
	/* branch counters: every counted branch executed at most once per sampled packet
	 * unless in a loop; the first branch of main runs on every sampled packet */
	assert_true(prof.branch_cnt > 0);
	assert_int_equal(prof.branches[0].taken + prof.branches[0].not_taken, prof.packets);
	before = prof.packets;
	rs_profile_free(&prof);
	/* every packet through the copy (the offline compare pass), then back to 1 in N */
	assert_int_equal(rs_profiler_sample_all(pr, b, true), 0);
	rs_replay_result_free(&res);
	assert_int_equal(rs_replay_compare(a, b, &tr, &ro, &res), 0);
	assert_int_equal(res.divergences, 0);
	assert_int_equal(rs_profiler_collect(pr, b, 10, &prof), 0);
	assert_int_equal(prof.packets - before, tr.cnt);	/* the counters go on */
	rs_profile_free(&prof);
	assert_int_equal(rs_profiler_sample_all(pr, b, false), 0);
	rs_replay_result_free(&res);
	rs_replay_close(b);
	rs_profiler_free(pr);
	rs_replay_close(a);
	rs_scenario_free(sc);
	rs_trace_free(&tr);
}

static void test_replay_samples(void **state)
{
	(void)state;
	/* struct flow_key is 40 bytes; routes4 keys are {prefixlen, addr} */
	replay_sample("l4lb.bpf.o", "l4lb", "l4lb-16x64.json", "conn_table", 40, 4, false, false);
	replay_sample("l4lb.bpf.o", "l4lb", "l4lb-16x64.json", "conn_table", 40, 16, true, false);
	replay_sample("firewall.bpf.o", "firewall", "firewall-100.json", "conntrack", 40, 8, false,
		      false);
	replay_sample("firewall-xdp.bpf.o", "firewall", "firewall-100.json", "conntrack", 40, 1,
		      false, false);
	replay_sample("router.bpf.o", "router", "router-1k.json", "routes4", 8, 16, false, false);
	replay_sample("router.bpf.o", "router", "router-1k.json", "routes4", 8, 16, false, true);
}

/*
 * A main body with a 320-byte frame: calling the copy would need two such frames (past the
 * verifier's 512), so the profiler falls back to the inline copy, which loads and runs.
 */
static void test_call_layout_fallback(void **state)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ST | BPF_DW | BPF_MEM, .dst_reg = 10, .off = -320, .imm = 7 },
		{ .code = BPF_LDX | BPF_DW | BPF_MEM, .dst_reg = 0, .src_reg = 10, .off = -320 },
		{ .code = BPF_JMP | BPF_JEQ | BPF_K, .dst_reg = 0, .off = 1, .imm = 7 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = XDP_DROP },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	struct rs_profiler_opts po = { .sz = sizeof(po), .sample_rate = 1 };
	LIBBPF_OPTS(bpf_test_run_opts, to);
	struct rs_profiler *pr = NULL;
	struct rs_profile prof;
	uint8_t pkt[64] = {};
	struct rs_prog p;
	int fd;

	(void)state;
	rs_prog_init(&p);
	assert_int_equal(rs_prog_set_insns(&p, insns, RS_ARRAY_SIZE(insns)), 0);
	strcpy(p.name, "deep_stack");
	strcpy(p.license, "GPL");
	p.type = BPF_PROG_TYPE_XDP;
	assert_int_equal(rs_profiler_new(&p, &po, &pr), 0);
	assert_false(rs_profiler_layout(pr)->call);
	fd = rs_profiler_load(pr);
	assert_true(fd >= 0);
	to.data_in = pkt;
	to.data_size_in = sizeof(pkt);
	to.repeat = 3;
	assert_int_equal(bpf_prog_test_run_opts(fd, &to), 0);
	assert_int_equal(to.retval, XDP_PASS);
	assert_int_equal(rs_profiler_collect(pr, NULL, 10, &prof), 0);
	assert_int_equal(prof.packets, 3);
	assert_int_equal(prof.branches[0].taken, 3);
	rs_profile_free(&prof);
	close(fd);
	rs_profiler_free(pr);
	rs_prog_free(&p);
}

static void test_router_lpm_keys(void **state)
{
	(void)state;
	/* router-50k: large LPM tries; the key of routes4 is {prefixlen 32, addr} */
	replay_sample("router.bpf.o", "router", "router-50k.json", "routes4", 8, 2, true, false);
}

static void test_stats_window(void **state)
{
	struct rs_stats_window w;
	struct rs_stats_result r;
	struct bpf_insn insns[2] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	uint8_t pkt[64] = {};
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);
	int before = rs_bpf_stats_sysctl(), fd, i;

	(void)state;
	assert_true(before == 0 || before == 1);
	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "rs_stw", "GPL", insns, 2, NULL);
	assert_true(fd >= 0);
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	assert_int_equal(rs_stats_window_begin(info.id, &w), 0);
	/* (the sysctl shows what was last written to it, not the fd's effect) */
	for (i = 0; i < 100; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, to, .data_in = pkt, .data_size_in = sizeof(pkt));

		assert_int_equal(bpf_prog_test_run_opts(fd, &to), 0);
	}
	assert_int_equal(rs_stats_window_end(&w, &r), 0);
	/* after the window runs are not counted any more (unless stats were on before) */
	for (i = 0; i < 10; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, to, .data_in = pkt, .data_size_in = sizeof(pkt));

		assert_int_equal(bpf_prog_test_run_opts(fd, &to), 0);
	}
	memset(&info, 0, sizeof(info));
	len = sizeof(info);
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	if (!before)
		assert_int_equal(info.run_cnt, 100);
	assert_true(r.sysctl_restored);
	assert_int_equal(rs_bpf_stats_sysctl(), before);
	assert_int_equal(r.run_cnt, 100);
	assert_true(r.ns_per_packet > 0);
	assert_int_equal(w.stats_fd, -1);
	close(fd);
}

/* ---- live ------------------------------------------------------------------------------ */

static void kill_children(void)
{
	if (sender_pid > 0) {
		kill(sender_pid, SIGKILL);
		waitpid(sender_pid, NULL, 0);
		sender_pid = 0;
	}
	if (loader_pid > 0) {
		kill(loader_pid, SIGTERM);
		waitpid(loader_pid, NULL, 0);
		loader_pid = 0;
	}
}

/* Send the trace's frames on `dev` in a loop until killed (child). */
static void send_loop(const char *dev, const struct rs_trace *tr)
{
	struct sockaddr_ll sa = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int s = socket(AF_PACKET, SOCK_RAW, 0);
	size_t i;

	sa.sll_ifindex = (int)if_nametoindex(dev);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)))
		_exit(1);
	for (;;)
		for (i = 0; i < tr->cnt; i++)
			if (send(s, tr->pkts[i].data, tr->pkts[i].len, 0) < 0 && errno != ENOBUFS)
				_exit(2);
}

static void test_live_profile(void **state)
{
	char cmd[8192], pcap[4096], out[256], line[512] = "";
	int to[2], from[2], before = rs_bpf_stats_sysctl();
	struct rs_journal_entry *je = NULL;
	struct rs_attach_point *pts = NULL;
	uint32_t prog_id = 0;
	size_t npts = 0, i, active = 0;
	struct rs_trace tr = {};
	struct rs_profile saved;
	json_t *o, *s, *churn;
	json_error_t jerr;
	FILE *lin, *lout, *p;
	bool conn_seen = false, vip_churn = false;

	(void)state;
	trace_for("l4lb", "l4lb-16x64.json", 20000, pcap, sizeof(pcap));
	assert_int_equal(rs_trace_load_pcap(pcap, &tr), 0);
	snprintf(cmd, sizeof(cmd), "ip netns add %s && ip link add %s type veth peer name %s && "
		 "ip link set %s netns %s && ip link set %s up && ip -n %s link set %s up",
		 ns, veth_a, veth_b, veth_b, ns, veth_a, ns, veth_b);
	assert_int_equal(system(cmd), 0);

	/* the loader, in the namespace, as the control plane */
	assert_int_equal(pipe(to), 0);
	assert_int_equal(pipe(from), 0);
	loader_pid = fork();
	assert_true(loader_pid >= 0);
	if (!loader_pid) {
		char exe[4096], scen[4096];

		snprintf(exe, sizeof(exe), "%s/bpf/samples/l4lb/l4lb-loader", bd());
		snprintf(scen, sizeof(scen), "%s/bpf/samples/l4lb/scenarios/l4lb-16x64.json", sd());
		dup2(to[0], STDIN_FILENO);
		dup2(from[1], STDOUT_FILENO);
		close(to[1]);
		close(from[0]);
		execlp("ip", "ip", "netns", "exec", ns, exe, "--dev", veth_b, "--scenario", scen,
		       (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	lin = fdopen(to[1], "w");
	lout = fdopen(from[0], "r");
	assert_non_null(fgets(line, sizeof(line), lout));
	assert_int_equal(sscanf(line, "ready prog %u", &prog_id), 1);

	sender_pid = fork();
	assert_true(sender_pid >= 0);
	if (!sender_pid)
		send_loop(veth_a, &tr);

	snprintf(out, sizeof(out), "%s/live.json", tmpdir);
	snprintf(cmd, sizeof(cmd), "%s/tools/respec profile id %u --seconds 3 --rate 8 --churn "
		 "-o %s -j", bd(), prog_id, out);
	p = popen(cmd, "r");
	assert_non_null(p);
	sleep(2);		/* inside the window (1 s cost window first) */
	fprintf(lin, "updates\n");
	fflush(lin);
	o = json_loadf(p, 0, &jerr);
	assert_int_equal(pclose(p), 0);
	assert_non_null(o);
	kill(sender_pid, SIGKILL);
	waitpid(sender_pid, NULL, 0);
	sender_pid = 0;

	assert_true(json_integer_value(json_object_get(o, "packets")) > 100);
	assert_int_equal(json_integer_value(json_object_get(o, "sample_rate")), 8);
	assert_true(json_real_value(json_object_get(json_object_get(o, "cost"),
						    "original_ns_per_packet")) > 0);
	assert_true(json_integer_value(json_object_get(json_object_get(o, "cost"),
						       "packets_seen")) > 0);
	json_array_foreach(json_object_get(o, "sites"), i, s) {
		json_t *k0 = json_array_get(json_object_get(s, "keys"), 0);

		if (strcmp(json_string_value(json_object_get(s, "map")) ?: "", "conn_table") ||
		    !k0)
			continue;
		conn_seen = true;
		assert_true(json_real_value(json_object_get(k0, "share")) > 0.05);
		/* decoded with the map's BTF key type */
		assert_non_null(strstr(json_string_value(json_object_get(k0, "decoded")) ?: "",
				       ".sport"));
	}
	assert_true(conn_seen);
	assert_true(json_array_size(json_object_get(o, "branches")) > 10);
	churn = json_object_get(o, "churn");
	json_array_foreach(churn, i, s)
		if (!strcmp(json_string_value(json_object_get(s, "map")), "vip_map") &&
		    json_integer_value(json_object_get(s, "writes")) > 0)
			vip_churn = true;
	assert_true(vip_churn);
	json_decref(o);
	assert_int_equal(rs_profile_load(out, &saved), 0);
	assert_true(saved.site_cnt > 0);
	rs_profile_free(&saved);

	/* afterwards: the original is attached again, stats as before, journal closed */
	assert_int_equal(rs_discover(&pts, &npts), 0);
	for (i = 0; i < npts; i++)
		if (!strcmp(pts[i].ifname, veth_b))
			assert_int_equal(pts[i].prog_id, prog_id);
	free(pts);
	assert_int_equal(rs_bpf_stats_sysctl(), before);
	if (!rs_journal_list(NULL, &je, &active)) {
		for (i = 0; i < active; i++)
			assert_true(je[i].orig_id != prog_id || je[i].closed);
		free(je);
	}
	fprintf(lin, "quit\n");
	fflush(lin);
	fclose(lin);
	fclose(lout);
	assert_int_equal(waitpid(loader_pid, NULL, 0), loader_pid);
	loader_pid = 0;
	rs_trace_free(&tr);
}

static int group_setup(void **state)
{
	(void)state;
	rs_set_log_fn(log_stderr);
	rs_route_libbpf_log();
	if (geteuid()) {
		fprintf(stderr, "needs root\n");
		return -1;
	}
	snprintf(ns, sizeof(ns), "rs_prof_%d", getpid());
	snprintf(veth_a, sizeof(veth_a), "rsp%da", getpid() % 100000);
	snprintf(veth_b, sizeof(veth_b), "rsp%db", getpid() % 100000);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/rs_test_profile.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[512];

	(void)state;
	kill_children();
	snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null; ip link del %s 2>/dev/null; "
		 "rm -rf %s", ns, veth_a, tmpdir);
	if (system(cmd) < 0)
		return -1;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats_window),
		cmocka_unit_test(test_replay_samples),
		cmocka_unit_test(test_call_layout_fallback),
		cmocka_unit_test(test_router_lpm_keys),
		cmocka_unit_test(test_live_profile),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
