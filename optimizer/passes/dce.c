/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dce.c - the dce pass (being written; changes nothing yet).
 */
#include "optimizer/pass.h"

static int dce_run(struct rs_opt_ctx *ctx)
{
	(void)ctx;
	return 0;
}

const struct rs_pass rs_pass_dce = {
	.name = "dce",
	.run = dce_run,
};
