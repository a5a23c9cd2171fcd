// SPDX-License-Identifier: BSD-2-Clause
/* optimize.c - `respec optimize` (being written). */
#include "tools/main.h"

int do_optimize(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	p_err("optimize: not yet");
	return RS_EXIT_FAIL;
}
