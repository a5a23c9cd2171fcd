// SPDX-License-Identifier: BSD-2-Clause
/*
 * optimizer_time - the optimizer's own time on random programs of a given size (issue 4:
 * "snapshot in memory to verified-ready bytecode <= 20 ms for a 3000-instruction program").
 *
 *   build/benchmarks/optimizer_time [INSNS [RUNS [SEED]]]     (defaults 3000, 30, 1)
 *
 * Builds a random valid program of about INSNS instructions in 4 subprograms with 4 hash maps
 * (rs_gen_prog of tests/unit/ir_testlib.h, the generator the IR tests use), gives every map a
 * complete, watched snapshot of its entries (16 at most), runs rs_optimize (all passes, default options) RUNS
 * times and prints the minimum and the median in ms.  Pure: no kernel, no root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "optimizer/optimizer.h"
#include "tests/unit/ir_testlib.h"

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	size_t want = argc > 1 ? strtoul(argv[1], NULL, 10) : 3000;
	int runs = argc > 2 ? atoi(argv[2]) : 30;
	struct rs_gen_opts go = { .subprogs = 4, .maps = 4 };
	struct rs_snapshot snap = {};
	struct rs_prog p;
	double *t;
	size_t i;
	int k;

	if (argc > 3)
		setenv("RS_TEST_SEED", argv[3], 1);
	rs_test_seed(1);
	if (want < 100 || runs < 1) {
		fprintf(stderr, "usage: %s [INSNS >= 100 [RUNS >= 1 [SEED]]]\n", argv[0]);
		return 2;
	}
	rs_prog_init(&p);
	/* the generator's bodies come out at ~1.05 x body instructions each */
	go.body = want / go.subprogs;
	if (rs_gen_prog(&p, &go)) {
		fprintf(stderr, "optimizer_time: generating the program failed\n");
		return 1;
	}
	snap.map_cnt = p.map_cnt;
	snap.maps = calloc(p.map_cnt, sizeof(*snap.maps));
	t = calloc((size_t)runs, sizeof(*t));
	if (!snap.maps || !t)
		return 1;
	for (i = 0; i < p.map_cnt; i++) {
		struct rs_map_snapshot *m = &snap.maps[i];
		const struct rs_map_ref *r = &p.maps[i];
		uint32_t key;

		m->map_idx = (uint32_t)i;
		m->type = r->type;
		m->key_size = r->key_size;
		m->value_size = r->value_size;
		m->max_entries = r->max_entries;
		m->complete = true;
		m->ncpus = 1;
		m->value_stride = r->value_size;
		m->watched = true;
		m->cnt = 16 < r->max_entries ? 16 : r->max_entries;
		m->keys = calloc(m->cnt, r->key_size);
		m->values = calloc(m->cnt, r->value_size);
		if (!m->keys || !m->values)
			return 1;
		for (key = 0; key < m->cnt; key++) {
			memcpy(m->keys + key * r->key_size, &key,
			       r->key_size < sizeof(key) ? r->key_size : sizeof(key));
			memset(m->values + key * r->value_size, (int)key, r->value_size);
		}
	}
	for (k = 0; k < runs; k++) {
		struct rs_opt_result res;
		double t0 = now_ms();
		int err = rs_optimize(&p, &snap, NULL, NULL, &res);

		t[k] = now_ms() - t0;
		if (err) {
			fprintf(stderr, "optimizer_time: rs_optimize: %d\n", err);
			return 1;
		}
		rs_opt_result_free(&res);
	}
	qsort(t, (size_t)runs, sizeof(*t), cmp_double);
	printf("%zu instructions, %zu subprograms, %zu maps: rs_optimize min %.2f ms, median %.2f ms "
	       "(%d runs)\n", p.insn_cnt, go.subprogs, p.map_cnt, t[0], t[runs / 2], runs);
	rs_snapshot_free(&snap);
	rs_prog_free(&p);
	free(t);
	return 0;
}
