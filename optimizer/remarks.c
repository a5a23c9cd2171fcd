// SPDX-License-Identifier: BSD-2-Clause
/*
 * remarks.c - the list of optimization remarks (one decision each, DESIGN.md §6).  The list
 * owns deep copies of the before/after instructions so callers may pass stack buffers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/optimizer.h"

static int dup_insns(struct bpf_insn **dst, const struct bpf_insn *src, size_t cnt)
{
	*dst = NULL;
	if (!src || !cnt)
		return 0;
	*dst = malloc(cnt * sizeof(*src));
	if (!*dst)
		return -ENOMEM;
	memcpy(*dst, src, cnt * sizeof(*src));
	return 0;
}

int rs_remarks_add(struct rs_remarks *r, const struct rs_remark *rm)
{
	struct rs_remark *slot;

	if (!r || !rm)
		return -EINVAL;
	if (r->cnt == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;
		struct rs_remark *v = realloc(r->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	slot = &r->v[r->cnt];
	*slot = *rm;
	slot->pass[sizeof(slot->pass) - 1] = '\0';
	slot->msg[sizeof(slot->msg) - 1] = '\0';
	slot->assumption[sizeof(slot->assumption) - 1] = '\0';
	if (dup_insns(&slot->before, rm->before, rm->before_cnt))
		return -ENOMEM;
	if (dup_insns(&slot->after, rm->after, rm->after_cnt)) {
		free(slot->before);
		return -ENOMEM;
	}
	if (!slot->before)
		slot->before_cnt = 0;
	if (!slot->after)
		slot->after_cnt = 0;
	r->cnt++;
	return 0;
}

void rs_remarks_free(struct rs_remarks *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->cnt; i++) {
		free(r->v[i].before);
		free(r->v[i].after);
	}
	free(r->v);
	r->v = NULL;
	r->cnt = r->cap = 0;
}
