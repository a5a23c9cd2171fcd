/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * map_fold.c - placeholder for the map_fold pass (owned by "mappasses", who replaces this file).
 * It changes nothing so the pipeline links before the real pass lands.
 */
#include "optimizer/pass.h"

static int map_fold_run(struct rs_opt_ctx *ctx)
{
	(void)ctx;
	return 0;
}

const struct rs_pass rs_pass_map_fold = {
	.name = "map_fold",
	.run = map_fold_run,
};
