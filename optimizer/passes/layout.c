/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * layout.c - the layout pass (being written; changes nothing yet).
 */
#include "optimizer/pass.h"

static int layout_run(struct rs_opt_ctx *ctx)
{
	(void)ctx;
	return 0;
}

const struct rs_pass rs_pass_layout = {
	.name = "layout",
	.run = layout_run,
};
