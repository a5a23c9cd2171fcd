// SPDX-License-Identifier: BSD-2-Clause
/* instrument.c - placeholder until the first measuring module lands. */
