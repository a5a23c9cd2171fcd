// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_swap_traffic.c - swaps under traffic, for every attach kind, inside a private network
 * namespace (tests/kernel/swap_env.h).
 *
 * A sender thread writes UDP frames (10.250.0.3 -> 10.250.0.2:9999) with an AF_PACKET socket
 * on rsv0; they cross the veth pair and reach a UDP socket bound on rsv1's address, read by a
 * receiver thread.  At rsv1 ingress, programs A, B and C (tests/kernel/progs/swap_progs.bpf.c)
 * all pass the packet and count it in their own slot of one shared array.  A is the original;
 * the main thread swaps A -> B, then B <-> C SWAPS times through rs_swap() (journal on) while
 * traffic flows, then restores A from the journal.  Then:
 *   A + B + C counts == sent   every packet ran exactly one program,
 *   received == sent           every packet was delivered (0 lost),
 *   tail-call-miss count == 0  (prog array: the slot was never empty).
 * The sender keeps at most WINDOW packets in flight, so queues never overflow and a loss can
 * only come from the swap.  Swap latency per kind (kernel operation, and the whole rs_swap()
 * with its journal write) is printed; timings are reported, never asserted.
 */
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/ip.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#include <cmocka.h>

#include "swap_env.h"

#define SWAPS		200
#define WINDOW		64
#define PAYLOAD		18

struct traffic {
	int tx_fd, rx_fd;
	atomic_ulong sent, recvd;
	atomic_bool stop_tx, stop_rx;
	pthread_t tx, rx;
	bool running;
	uint8_t frame[14 + 20 + 8 + PAYLOAD];
	struct sockaddr_ll to;
};

static struct traffic tr = { .tx_fd = -1, .rx_fd = -1 };

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint16_t ip_csum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)b[i] << 8 | b[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static void build_frame(void)
{
	uint8_t *f = tr.frame, *ip = f + 14, *udp = ip + 20;
	uint16_t v;

	memset(f, 0, sizeof(tr.frame));
	memcpy(f, env.mac1, 6);
	memcpy(f + 6, env.mac0, 6);
	f[12] = 0x08;
	ip[0] = 0x45;
	v = htons(20 + 8 + PAYLOAD);
	memcpy(ip + 2, &v, 2);
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	inet_pton(AF_INET, "10.250.0.3", ip + 12);
	inet_pton(AF_INET, "10.250.0.2", ip + 16);
	v = ip_csum(ip, 20);
	memcpy(ip + 10, &v, 2);
	v = htons(12345);
	memcpy(udp, &v, 2);
	v = htons(9999);
	memcpy(udp + 2, &v, 2);
	v = htons(8 + PAYLOAD);
	memcpy(udp + 4, &v, 2);
	memcpy(udp + 8, "respec-swap-test!!", PAYLOAD);
}

static void *tx_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&tr.stop_tx)) {
		uint64_t t0 = now_ns();

		/* flow control: never more than WINDOW in flight (200 ms grace for a loss) */
		while (atomic_load(&tr.sent) - atomic_load(&tr.recvd) >= WINDOW &&
		       now_ns() - t0 < 200000000ull)
			sched_yield();
		if (sendto(tr.tx_fd, tr.frame, sizeof(tr.frame), 0, (struct sockaddr *)&tr.to,
			   sizeof(tr.to)) == (ssize_t)sizeof(tr.frame))
			atomic_fetch_add(&tr.sent, 1);
	}
	return NULL;
}

static void *rx_main(void *arg)
{
	char buf[256];

	(void)arg;
	while (!atomic_load(&tr.stop_rx)) {
		ssize_t n = recv(tr.rx_fd, buf, sizeof(buf), 0);

		if (n == PAYLOAD && !memcmp(buf, "respec-swap-test!!", PAYLOAD))
			atomic_fetch_add(&tr.recvd, 1);
	}
	return NULL;
}

static int sockets_open(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9999) };
	struct timeval tv = { .tv_usec = 50000 };
	int rcvbuf = 4 << 20;

	ns_in();
	tr.tx_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	tr.rx_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ns_out();
	if (tr.tx_fd < 0 || tr.rx_fd < 0)
		return -errno;
	inet_pton(AF_INET, "10.250.0.2", &sin.sin_addr);
	if (bind(tr.rx_fd, (struct sockaddr *)&sin, sizeof(sin)) ||
	    setsockopt(tr.rx_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(tr.rx_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)))
		return -errno;
	tr.to.sll_family = AF_PACKET;
	tr.to.sll_ifindex = env.if0;
	tr.to.sll_halen = 6;
	memcpy(tr.to.sll_addr, env.mac1, 6);
	build_frame();
	return 0;
}

static void counts_reset(void)
{
	uint64_t zero = 0;
	uint32_t k;

	for (k = 0; k < 4; k++)
		bpf_map_update_elem(env.counts_fd, &k, &zero, BPF_ANY);
}

static uint64_t count_of(uint32_t k)
{
	uint64_t v = 0;

	bpf_map_lookup_elem(env.counts_fd, &k, &v);
	return v;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void wait_recvd(unsigned long target, uint64_t timeout_ns)
{
	uint64_t t0 = now_ns();

	while (atomic_load(&tr.recvd) < target && now_ns() - t0 < timeout_ns)
		usleep(1000);
}

static void check_kind(enum rs_attach_kind k)
{
	struct rs_swap_opts so = { .sz = sizeof(so), .journal_dir = env.jdir,
				   .pin_dir = env.pdir };
	struct rs_restore_opts ro = { .sz = sizeof(ro), .journal_dir = env.jdir };
	static uint64_t op[SWAPS], total[SWAPS];
	unsigned long sent, recvd, at_start;
	struct rs_attach_point pt;
	const uint32_t *id;
	const int *fd = kind_progs(k, &id);
	uint64_t a, b, c, t0;
	int i, cur = P_B;

	assert_int_equal(attach(k, fd[P_A]), 0);
	assert_int_equal(find_point(k, &pt), 0);
	counts_reset();
	atomic_store(&tr.sent, 0);
	atomic_store(&tr.recvd, 0);
	atomic_store(&tr.stop_tx, false);
	atomic_store(&tr.stop_rx, false);
	assert_int_equal(pthread_create(&tr.rx, NULL, rx_main, NULL), 0);
	assert_int_equal(pthread_create(&tr.tx, NULL, tx_main, NULL), 0);
	tr.running = true;
	wait_recvd(1000, 2000000000ull);

	/* A is the original; ours are B and C */
	assert_int_equal(rs_swap(&pt, id[P_A], fd[P_B], &so), 0);
	at_start = atomic_load(&tr.sent);
	for (i = 0; i < SWAPS; i++) {
		int next = cur == P_B ? P_C : P_B;

		t0 = now_ns();
		if (rs_swap(&pt, id[cur], fd[next], &so))
			break;
		total[i] = now_ns() - t0;
		op[i] = so.op_ns;
		cur = next;
		usleep(200);	/* let packets through each program */
	}
	atomic_store(&tr.stop_tx, true);
	pthread_join(tr.tx, NULL);
	sent = atomic_load(&tr.sent);
	wait_recvd(sent, 2000000000ull);
	atomic_store(&tr.stop_rx, true);
	pthread_join(tr.rx, NULL);
	tr.running = false;
	recvd = atomic_load(&tr.recvd);
	a = count_of(0);
	b = count_of(1);
	c = count_of(2);

	qsort(op, i, sizeof(op[0]), cmp_u64);
	qsort(total, i, sizeof(total[0]), cmp_u64);
	printf("%-10s swaps %d  sent %lu (%lu during swaps)  received %lu  A %llu  B %llu  "
	       "C %llu  miss %llu\n", rs_attach_kind_name(k), i, sent, sent - at_start, recvd,
	       (unsigned long long)a, (unsigned long long)b,
	       (unsigned long long)c, (unsigned long long)count_of(3));
	if (i)
		printf("%-10s kernel op ns: median %llu p90 %llu max %llu;  rs_swap() ns: "
		       "median %llu p90 %llu\n", rs_attach_kind_name(k),
		       (unsigned long long)op[i / 2], (unsigned long long)op[i * 9 / 10],
		       (unsigned long long)op[i - 1], (unsigned long long)total[i / 2],
		       (unsigned long long)total[i * 9 / 10]);
	fflush(stdout);

	assert_int_equal(i, SWAPS);
	assert_true(sent - at_start >= SWAPS);	/* traffic really overlapped the swaps */
	assert_int_equal(recvd, sent);		/* 0 lost */
	assert_int_equal(a + b + c, sent);	/* each packet ran exactly one program */
	assert_true(b > 0 && c > 0);
	assert_int_equal(count_of(3), 0);	/* no tail call found an empty slot */

	/* back to the original (A) through the journal */
	assert_int_equal(rs_restore(&pt, &ro), 0);
	assert_int_equal(current_id(&pt), id[P_A]);
	detach(k);
}

#define KIND_TEST(NAME, KIND)					\
static void NAME(void **state)					\
{								\
	(void)state;						\
	check_kind(KIND);					\
}

KIND_TEST(test_traffic_xdp_netlink, RS_ATTACH_XDP_NETLINK)
KIND_TEST(test_traffic_xdp_link, RS_ATTACH_XDP_LINK)
KIND_TEST(test_traffic_tcx_link, RS_ATTACH_TCX_LINK)
KIND_TEST(test_traffic_tcx, RS_ATTACH_TCX)
KIND_TEST(test_traffic_tc_cls, RS_ATTACH_TC_CLS)
KIND_TEST(test_traffic_prog_array, RS_ATTACH_PROG_ARRAY)

static int teardown_each(void **state)
{
	(void)state;
	atomic_store(&tr.stop_tx, true);
	atomic_store(&tr.stop_rx, true);
	if (tr.running) {
		pthread_join(tr.tx, NULL);
		pthread_join(tr.rx, NULL);
		tr.running = false;
	}
	env_reset();
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	if (env_create())
		return -1;
	/* replies never leave; the source is not ours and must not be filtered */
	if (run("ip netns exec %s sysctl -qw net.ipv4.conf.all.rp_filter=0 "
		"net.ipv4.conf.rsv1.rp_filter=0", env.ns) || sockets_open()) {
		env_destroy();
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (tr.tx_fd >= 0)
		close(tr.tx_fd);
	if (tr.rx_fd >= 0)
		close(tr.rx_fd);
	env_destroy();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_traffic_xdp_netlink, teardown_each),
		cmocka_unit_test_teardown(test_traffic_xdp_link, teardown_each),
		cmocka_unit_test_teardown(test_traffic_tcx_link, teardown_each),
		cmocka_unit_test_teardown(test_traffic_tcx, teardown_each),
		cmocka_unit_test_teardown(test_traffic_tc_cls, teardown_each),
		cmocka_unit_test_teardown(test_traffic_prog_array, teardown_each),
	};
	int ret = ktest_start();

	if (ret)
		return ret;
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
