// SPDX-License-Identifier: BSD-2-Clause
/* prog.c - respec prog { list | show | dump | lift }.  (being written) */
#include "tools/main.h"

int do_prog(int argc, char **argv)
{
	return usage_err("prog", "not implemented yet");
}
