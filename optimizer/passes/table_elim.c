/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * table_elim.c - placeholder for the table_elim pass (owned by "mappasses", who replaces this file).
 * It changes nothing so the pipeline links before the real pass lands.
 */
#include "optimizer/pass.h"

static int table_elim_run(struct rs_opt_ctx *ctx)
{
	(void)ctx;
	return 0;
}

const struct rs_pass rs_pass_table_elim = {
	.name = "table_elim",
	.run = table_elim_run,
};
