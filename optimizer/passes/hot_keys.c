/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * hot_keys.c - placeholder for the hot_keys pass (owned by "mappasses", who replaces this file).
 * It changes nothing so the pipeline links before the real pass lands.
 */
#include "optimizer/pass.h"

static int hot_keys_run(struct rs_opt_ctx *ctx)
{
	(void)ctx;
	return 0;
}

const struct rs_pass rs_pass_hot_keys = {
	.name = "hot_keys",
	.run = hot_keys_run,
};
