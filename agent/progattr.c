// SPDX-License-Identifier: BSD-2-Clause
/*
 * progattr.c - load attributes of a loaded program that bpf_prog_info does not report:
 * the expected attach type and BPF_F_XDP_HAS_FRAGS.  They are needed to reload a program
 * (a tail-call target or a swap must match them), so they come from an iter/bpf_prog program
 * (bpf/progattr.bpf.c) that walks every struct bpf_prog in the kernel.
 *
 * The iterator program is loaded once per process (on first use) and a fresh iterator
 * instance is read per call: attributes of a given program never change, but programs come and
 * go.  rs_prog_load_attrs_cleanup() unloads it.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/agent.h"
#include "progattr.skel.h"

/* Keep in sync with bpf/progattr.bpf.c. */
struct rs_progattr_rec {
	uint32_t id;
	uint32_t type;
	uint32_t expected_attach_type;
	uint32_t flags;
};

#define RS_PA_XDP_HAS_FRAGS	(1U << 0)
#define RS_PA_HAS_FRAGS_FIELD	(1U << 1)

#ifndef BPF_F_XDP_HAS_FRAGS
#define BPF_F_XDP_HAS_FRAGS	(1U << 5)
#endif

static pthread_mutex_t pa_lock = PTHREAD_MUTEX_INITIALIZER;
static struct progattr *pa_skel;
static struct bpf_link *pa_link;

static int pa_open_locked(void)
{
	int err;

	if (pa_skel)
		return 0;
	pa_skel = progattr__open_and_load();
	if (!pa_skel) {
		err = -errno;
		rs_warn("progattr: cannot load the iter/bpf_prog program: %s\n", rs_strerror(err));
		return err;
	}
	pa_link = bpf_program__attach_iter(pa_skel->progs.rs_progattr, NULL);
	if (!pa_link) {
		err = -errno;
		rs_warn("progattr: cannot attach the iter/bpf_prog program: %s\n",
			rs_strerror(err));
		progattr__destroy(pa_skel);
		pa_skel = NULL;
		return err;
	}
	return 0;
}

void rs_prog_load_attrs_cleanup(void)
{
	pthread_mutex_lock(&pa_lock);
	bpf_link__destroy(pa_link);
	pa_link = NULL;
	progattr__destroy(pa_skel);
	pa_skel = NULL;
	pthread_mutex_unlock(&pa_lock);
}

/* Read one iterator instance; find prog_id.  Records never straddle reads (seq_file). */
static int pa_scan(int iter_fd, uint32_t prog_id, struct rs_progattr_rec *out)
{
	struct rs_progattr_rec recs[128];
	size_t have = 0, i;
	bool found = false;
	ssize_t n;

	for (;;) {
		n = read(iter_fd, (char *)recs + have, sizeof(recs) - have);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		have += n;
		for (i = 0; i < have / sizeof(recs[0]); i++) {
			if (recs[i].id == prog_id) {
				*out = recs[i];
				found = true;
			}
		}
		/* keep a partial record, if any, at the front */
		i = have / sizeof(recs[0]) * sizeof(recs[0]);
		memmove(recs, (char *)recs + i, have - i);
		have -= i;
	}
	return found ? 0 : -RS_ERR_NOT_FOUND;
}

int rs_prog_load_attrs(uint32_t prog_id, uint32_t *expected_attach_type, uint32_t *prog_flags)
{
	struct rs_progattr_rec rec;
	int iter_fd, err;

	pthread_mutex_lock(&pa_lock);
	err = pa_open_locked();
	if (err)
		goto out;
	iter_fd = bpf_iter_create(bpf_link__fd(pa_link));
	if (iter_fd < 0) {
		err = -errno;
		rs_warn("prog %u: cannot create a bpf_prog iterator: %s\n", prog_id,
			rs_strerror(err));
		goto out;
	}
	err = pa_scan(iter_fd, prog_id, &rec);
	close(iter_fd);
	if (err == -RS_ERR_NOT_FOUND) {
		rs_warn("prog %u: no such program\n", prog_id);
		goto out;
	} else if (err) {
		rs_warn("prog %u: reading the bpf_prog iterator: %s\n", prog_id, rs_strerror(err));
		goto out;
	}
	if (expected_attach_type)
		*expected_attach_type = rec.expected_attach_type;
	if (prog_flags)
		*prog_flags = (rec.flags & RS_PA_XDP_HAS_FRAGS) ? BPF_F_XDP_HAS_FRAGS : 0;
	rs_debug("prog %u: type %u expected_attach_type %u%s\n", prog_id, rec.type,
		 rec.expected_attach_type, (rec.flags & RS_PA_XDP_HAS_FRAGS) ? " frags" : "");
out:
	pthread_mutex_unlock(&pa_lock);
	return err;
}
