/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * constprop.c - the constprop pass (being written; changes nothing yet).
 */
#include "optimizer/pass.h"

static int constprop_run(struct rs_opt_ctx *ctx)
{
	(void)ctx;
	return 0;
}

const struct rs_pass rs_pass_constprop = {
	.name = "constprop",
	.run = constprop_run,
};
