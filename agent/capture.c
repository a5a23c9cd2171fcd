// SPDX-License-Identifier: BSD-2-Clause
/*
 * capture.c - capture at load, user-space half (DESIGN.md 2.1; kernel half bpf/capture.bpf.c).
 *
 * The kernel programs send, per BPF_PROG_LOAD, an ENTER record (union bpf_attr, license, BTF
 * id), CHUNK records with the instructions / func_info / line_info copied from the loader's
 * memory, MAPREF records (ld_imm64 index -> map id and map attributes) and an EXIT record
 * (returned fd -> program id, plus how many records were sent, to detect losses).  They are
 * assembled per thread (pid_tgid + seq) into an rs_prog with map references in the IDX form of
 * ir.h and source RS_SRC_CAPTURE.  Before a capture is accepted, the tag of the raw captured
 * bytes must equal the tag the kernel reports for the new program: the capture is then
 * exactly what the loader sent.  Accepted captures are kept in memory and stored on disk
 * (capture_store.c).
 *
 * The hook is the tracepoint pair syscalls/sys_{enter,exit}_bpf; tracefs is mounted if needed
 * (and unmounted at stop if we mounted it).  Without tracefs, or with opts.force_raw_tp, the
 * raw tracepoints sys_enter / sys_exit are used.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/agent.h"
#include "capture.skel.h"

#include "bpf/capture.h"


#define TRACEFS		"/sys/kernel/tracing"
#define BLOB_LIMIT	(64u << 20)

struct pending {
	uint64_t pid_tgid;
	uint64_t seq;
	struct rs_cap_enter enter;
	union bpf_attr attr;
	uint8_t *blob[RS_BLOB_MAX];
	size_t blob_len[RS_BLOB_MAX];
	uint32_t chunks;
	bool chunk_err;
	struct rs_cap_mapref *refs;
	size_t ref_cnt;
};

struct rs_capture {
	struct capture *skel;
	struct ring_buffer *rb;
	const char *hook;
	bool mounted_tracefs;
	char store_dir[4096];
	struct pending *pend;
	size_t pend_cnt;
	struct rs_prog *progs;		/* accepted captures */
	size_t prog_cnt;
	size_t dropped;
};

static void pending_free(struct pending *p)
{
	int i;

	for (i = 0; i < RS_BLOB_MAX; i++)
		free(p->blob[i]);
	free(p->refs);
	memset(p, 0, sizeof(*p));
}

static void pending_remove(struct rs_capture *cap, struct pending *p)
{
	size_t i = p - cap->pend;

	pending_free(p);
	cap->pend[i] = cap->pend[cap->pend_cnt - 1];
	cap->pend_cnt--;
}

static struct pending *pending_find(struct rs_capture *cap, const struct rs_cap_hdr *h)
{
	size_t i;

	for (i = 0; i < cap->pend_cnt; i++)
		if (cap->pend[i].pid_tgid == h->pid_tgid && cap->pend[i].seq == h->seq)
			return &cap->pend[i];
	return NULL;
}

static int on_enter(struct rs_capture *cap, const struct rs_cap_enter *e)
{
	struct pending *p, *np;
	uint64_t len[RS_BLOB_MAX] = {};
	size_t i;
	int b;

	/* a thread has one bpf() at a time: anything older from it was lost */
	for (i = 0; i < cap->pend_cnt; i++) {
		if (cap->pend[i].pid_tgid == e->h.pid_tgid) {
			cap->dropped++;
			pending_remove(cap, &cap->pend[i]);
			break;
		}
	}
	np = realloc(cap->pend, (cap->pend_cnt + 1) * sizeof(*np));
	if (!np)
		return -ENOMEM;
	cap->pend = np;
	p = &cap->pend[cap->pend_cnt++];
	memset(p, 0, sizeof(*p));
	p->pid_tgid = e->h.pid_tgid;
	p->seq = e->h.seq;
	p->enter = *e;
	memcpy(&p->attr, e->attr, sizeof(p->attr) < sizeof(e->attr) ? sizeof(p->attr)
								       : sizeof(e->attr));
	if (e->attr_size < sizeof(p->attr))
		memset((char *)&p->attr + e->attr_size, 0, sizeof(p->attr) - e->attr_size);
	len[RS_BLOB_INSNS] = (uint64_t)p->attr.insn_cnt * sizeof(struct bpf_insn);
	len[RS_BLOB_FUNC_INFO] = (uint64_t)p->attr.func_info_cnt * p->attr.func_info_rec_size;
	len[RS_BLOB_LINE_INFO] = (uint64_t)p->attr.line_info_cnt * p->attr.line_info_rec_size;
	for (b = 1; b < RS_BLOB_MAX; b++) {
		if (!len[b])
			continue;
		if (len[b] > BLOB_LIMIT) {
			p->chunk_err = true;
			continue;
		}
		p->blob[b] = calloc(1, len[b]);
		if (!p->blob[b]) {
			pending_remove(cap, p);
			return -ENOMEM;
		}
		p->blob_len[b] = len[b];
	}
	return 0;
}

static void on_chunk(struct rs_capture *cap, const struct rs_cap_chunk *c)
{
	struct pending *p = pending_find(cap, &c->h);

	if (!p)
		return;
	p->chunks++;
	if (c->blob >= RS_BLOB_MAX || !p->blob[c->blob] || c->len > RS_CAP_CHUNK ||
	    (uint64_t)c->off + c->len > p->blob_len[c->blob] || c->err) {
		p->chunk_err = true;
		return;
	}
	memcpy(p->blob[c->blob] + c->off, c->data, c->len);
}

static int on_mapref(struct rs_capture *cap, const struct rs_cap_mapref *r)
{
	struct pending *p = pending_find(cap, &r->h);
	struct rs_cap_mapref *nr;

	if (!p)
		return 0;
	nr = realloc(p->refs, (p->ref_cnt + 1) * sizeof(*nr));
	if (!nr)
		return -ENOMEM;
	p->refs = nr;
	p->refs[p->ref_cnt++] = *r;
	return 0;
}

/* Kernel's view of the new program: tag and name. */
static int prog_info_by_id(uint32_t id, struct bpf_prog_info *info)
{
	__u32 len = sizeof(*info);
	int fd, err = 0;

	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	memset(info, 0, sizeof(*info));
	if (bpf_obj_get_info_by_fd(fd, info, &len))
		err = -errno;
	close(fd);
	return err;
}

/* ld_imm64 map refs of the raw bytes -> IDX form with maps[]; every one needs a MAPREF. */
static int convert_refs(struct rs_prog *prog, const struct pending *p, const char *who)
{
	struct bpf_insn *insns = prog->insns;
	size_t i, k;
	int idx;

	for (i = 0; i < prog->insn_cnt; i++) {
		struct bpf_insn *in = &insns[i];
		const struct rs_cap_mapref *r = NULL;
		struct rs_map_ref m = {};

		if (in->code != (BPF_LD | BPF_IMM | BPF_DW))
			continue;
		if (in->src_reg != BPF_PSEUDO_MAP_FD && in->src_reg != BPF_PSEUDO_MAP_VALUE &&
		    in->src_reg != BPF_PSEUDO_MAP_IDX && in->src_reg != BPF_PSEUDO_MAP_IDX_VALUE) {
			i++;
			continue;
		}
		for (k = 0; k < p->ref_cnt; k++)
			if (p->refs[k].insn == i)
				r = &p->refs[k];
		if (!r || r->src_reg != in->src_reg) {
			rs_warn("%s: insn %zu: map reference without a resolved map\n", who, i);
			return -RS_ERR_NOT_FOUND;
		}
		if (r->err || !r->map_id) {
			rs_warn("%s: insn %zu: fd %d did not resolve to a map: %s\n", who, i, r->fd,
				rs_strerror(r->err ? r->err : -ENOENT));
			return -RS_ERR_NOT_FOUND;
		}
		idx = -1;
		for (k = 0; k < prog->map_cnt; k++)
			if (prog->maps[k].id == r->map_id)
				idx = k;
		if (idx < 0) {
			m.id = r->map_id;
			m.type = r->map_type;
			m.key_size = r->key_size;
			m.value_size = r->value_size;
			m.max_entries = r->max_entries;
			m.flags = r->map_flags;
			memcpy(m.name, r->name, sizeof(m.name));
			m.name[sizeof(m.name) - 1] = '\0';
			idx = rs_prog_add_map(prog, &m);
			if (idx < 0)
				return idx;
		}
		in->src_reg = (in->src_reg == BPF_PSEUDO_MAP_FD || in->src_reg == BPF_PSEUDO_MAP_IDX)
			      ? BPF_PSEUDO_MAP_IDX : BPF_PSEUDO_MAP_IDX_VALUE;
		in->imm = idx;
		i++;
	}
	return 0;
}

static int copy_btf_info(struct rs_prog *prog, const struct pending *p)
{
	uint32_t frs = p->attr.func_info_rec_size, lrs = p->attr.line_info_rec_size;
	size_t i, n;

	n = p->blob[RS_BLOB_FUNC_INFO] && frs >= 8 ? p->attr.func_info_cnt : 0;
	if (n) {
		prog->func_info = calloc(n, sizeof(*prog->func_info));
		if (!prog->func_info)
			return -ENOMEM;
		for (i = 0; i < n; i++)
			memcpy(&prog->func_info[i], p->blob[RS_BLOB_FUNC_INFO] + i * frs, 8);
		prog->func_info_cnt = n;
	}
	n = p->blob[RS_BLOB_LINE_INFO] && lrs >= 16 ? p->attr.line_info_cnt : 0;
	if (n) {
		prog->line_info = calloc(n, sizeof(*prog->line_info));
		if (!prog->line_info)
			return -ENOMEM;
		for (i = 0; i < n; i++)
			memcpy(&prog->line_info[i], p->blob[RS_BLOB_LINE_INFO] + i * lrs, 16);
		prog->line_info_cnt = n;
	}
	return 0;
}

static int accept_capture(struct rs_capture *cap, struct pending *p, const struct rs_cap_exit *x)
{
	const struct bpf_insn *raw = (const struct bpf_insn *)p->blob[RS_BLOB_INSNS];
	uint8_t tag[BPF_TAG_SIZE];
	struct bpf_prog_info info;
	struct rs_prog prog, *np;
	char who[64];
	int err;

	snprintf(who, sizeof(who), "prog %u (%.16s)", x->prog_id, p->attr.prog_name);
	if (x->err || !x->prog_id) {
		rs_info("%s: loaded by pid %u but fd %lld did not resolve to a program: %s\n",
			who, (unsigned)(p->pid_tgid >> 32), (long long)x->ret,
			rs_strerror(x->err ? x->err : -ENOENT));
		return -RS_ERR_NOT_FOUND;
	}
	if (x->lost || p->chunk_err || x->chunks != p->chunks || x->refs != p->ref_cnt ||
	    p->enter.attr_err || !raw) {
		rs_warn("%s: capture incomplete (lost %u, chunks %u/%u, refs %zu/%u)\n", who,
			x->lost, p->chunks, x->chunks, p->ref_cnt, x->refs);
		return -EIO;
	}
	err = prog_info_by_id(x->prog_id, &info);
	if (err) {
		rs_debug("%s: gone before its capture was processed: %s\n", who,
			 rs_strerror(err));
		return err;
	}
	err = rs_tag_compute_insns(raw, p->attr.insn_cnt, RS_TAG_UNKNOWN, tag);
	if (err)
		return err;
	if (memcmp(tag, info.tag, BPF_TAG_SIZE)) {
		rs_warn("%s: captured bytes do not hash to the kernel tag: capture dropped\n", who);
		return -RS_ERR_PROOF;
	}

	rs_prog_init(&prog);
	memcpy(prog.name, p->attr.prog_name, sizeof(prog.name));
	prog.name[sizeof(prog.name) - 1] = '\0';
	prog.id = x->prog_id;
	memcpy(prog.tag, info.tag, BPF_TAG_SIZE);
	prog.type = p->attr.prog_type;
	prog.expected_attach_type = p->attr.expected_attach_type;
	prog.prog_flags = p->attr.prog_flags;
	snprintf(prog.license, sizeof(prog.license), "%s", p->enter.license);
	prog.source = RS_SRC_CAPTURE;
	prog.btf_id = p->enter.btf_id;
	err = rs_prog_set_insns(&prog, raw, p->attr.insn_cnt);
	if (err)
		goto fail;
	err = convert_refs(&prog, p, who);
	if (err)
		goto fail;
	err = copy_btf_info(&prog, p);
	if (err)
		goto fail;
	if (cap->store_dir[0]) {
		err = rs_capture_store(cap->store_dir, &prog, cap->hook);
		if (err)
			goto fail;
	}
	np = realloc(cap->progs, (cap->prog_cnt + 1) * sizeof(*np));
	if (!np) {
		err = -ENOMEM;
		goto fail;
	}
	cap->progs = np;
	cap->progs[cap->prog_cnt++] = prog;
	rs_debug("%s: captured %zu insns, %zu maps (pid %u)\n", who, prog.insn_cnt,
		 prog.map_cnt, (unsigned)(p->pid_tgid >> 32));
	return 0;
fail:
	rs_prog_free(&prog);
	return err;
}

static int on_exit_rec(struct rs_capture *cap, const struct rs_cap_exit *x)
{
	struct pending *p = pending_find(cap, &x->h);
	int err = 0;

	rs_debug("capture: pid %u: BPF_PROG_LOAD returned %lld (prog %u)\n",
		 (unsigned)(x->h.pid_tgid >> 32), (long long)x->ret, x->prog_id);
	if (!p) {
		cap->dropped++;
		return 0;
	}
	if (x->ret >= 0) {
		err = accept_capture(cap, p, x);
		if (err && err != -ENOENT)	/* ENOENT: program already gone, nothing lost */
			cap->dropped++;
	}
	pending_remove(cap, p);
	return err == -ENOMEM ? err : 0;	/* one bad capture must not stop the poll */
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct rs_capture *cap = ctx;
	const struct rs_cap_hdr *h = data;
	static const size_t want[] = {
		[RS_CAP_ENTER] = sizeof(struct rs_cap_enter),
		[RS_CAP_CHUNK_REC] = sizeof(struct rs_cap_chunk),
		[RS_CAP_MAPREF] = sizeof(struct rs_cap_mapref),
		[RS_CAP_EXIT] = sizeof(struct rs_cap_exit),
	};

	if (size < sizeof(*h) || h->kind == 0 || h->kind >= RS_ARRAY_SIZE(want) ||
	    size < want[h->kind] || h->size != want[h->kind]) {
		rs_warn("capture: malformed record (kind %u, %zu bytes)\n",
			size >= sizeof(*h) ? h->kind : 0, size);
		return 0;
	}
	switch (h->kind) {
	case RS_CAP_ENTER:
		return on_enter(cap, data);
	case RS_CAP_CHUNK_REC:
		on_chunk(cap, data);
		return 0;
	case RS_CAP_MAPREF:
		return on_mapref(cap, data);
	default:
		return on_exit_rec(cap, data);
	}
}

/* The tracepoint hook needs tracefs; mount it when it is missing. */
static bool tracefs_ready(struct rs_capture *cap)
{
	const char *ev = TRACEFS "/events/syscalls/sys_enter_bpf";

	if (access(ev, F_OK) == 0)
		return true;
	if (mount("tracefs", TRACEFS, "tracefs", 0, NULL)) {
		rs_info("capture: cannot mount tracefs on %s: %s\n", TRACEFS,
			rs_strerror(-errno));
		return false;
	}
	cap->mounted_tracefs = true;
	if (access(ev, F_OK) == 0)
		return true;
	rs_info("capture: %s missing (no syscall tracepoints)\n", ev);
	return false;
}

/* Learn the f_op of map, prog and BTF files (see bpf/capture.bpf.c). */
static int calibrate(struct rs_capture *cap)
{
	struct capture__bss *bss = cap->skel->bss;
	int fds[3], kind, btf_fd;
	union {
		struct bpf_map_info m;
		struct bpf_prog_info p;
		struct bpf_btf_info b;
	} info;
	__u32 len;

	btf_fd = bpf_object__btf_fd(cap->skel->obj);
	fds[0] = bpf_map__fd(cap->skel->maps.rs_cap_inflight);
	fds[1] = bpf_program__fd(cap->skel->progs.rs_cap_raw_exit);
	if (fds[1] < 0)
		fds[1] = bpf_program__fd(cap->skel->progs.rs_cap_tp_exit);
	fds[2] = btf_fd;
	bss->calib_pid_tgid = (uint64_t)getpid() << 32 | (uint32_t)gettid();
	for (kind = 1; kind <= 3; kind++) {
		if (fds[kind - 1] < 0)
			continue;
		bss->calib_kind = kind;
		__sync_synchronize();
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		bpf_obj_get_info_by_fd(fds[kind - 1], &info, &len);
	}
	bss->calib_pid_tgid = 0;
	__sync_synchronize();
	if (!bss->map_fops || !bss->prog_fops) {
		rs_warn("capture: calibration of the fd walk failed (hook %s not firing?)\n",
			cap->hook);
		return -ENOTSUP;
	}
	if (!bss->btf_fops)
		rs_info("capture: BTF fds not calibrated: btf_id of captures will be 0\n");
	return 0;
}

static int open_hook(struct rs_capture *cap, bool raw)
{
	struct capture *skel;
	int err;

	skel = capture__open();
	if (!skel)
		return -errno;
	bpf_program__set_autoload(skel->progs.rs_cap_tp_enter, !raw);
	bpf_program__set_autoload(skel->progs.rs_cap_tp_exit, !raw);
	bpf_program__set_autoload(skel->progs.rs_cap_raw_enter, raw);
	bpf_program__set_autoload(skel->progs.rs_cap_raw_exit, raw);
	err = capture__load(skel);
	if (err)
		goto fail;
	err = capture__attach(skel);
	if (err)
		goto fail;
	cap->skel = skel;
	cap->hook = raw ? "raw_tp" : "tracepoint";
	return 0;
fail:
	capture__destroy(skel);
	return err < 0 ? err : -EINVAL;
}

int rs_capture_start(const struct rs_capture_opts *opts, struct rs_capture **capp)
{
	const char *dir = RS_OPTS_GET(opts, store_dir, NULL);
	bool raw = RS_OPTS_GET(opts, force_raw_tp, false);
	struct rs_capture *cap;
	int err;

	cap = calloc(1, sizeof(*cap));
	if (!cap)
		return -ENOMEM;
	snprintf(cap->store_dir, sizeof(cap->store_dir), "%s", dir ? dir : RS_CAPTURE_DIR);
	if (!raw && !tracefs_ready(cap))
		raw = true;
	err = open_hook(cap, raw);
	if (err && !raw) {
		rs_info("capture: tracepoint hook failed (%s), trying raw_tp\n", rs_strerror(err));
		err = open_hook(cap, true);
	}
	if (err) {
		rs_warn("capture: cannot load or attach the capture programs: %s\n",
			rs_strerror(err));
		goto fail;
	}
	err = calibrate(cap);
	if (err)
		goto fail;
	cap->rb = ring_buffer__new(bpf_map__fd(cap->skel->maps.rs_cap_events), on_record, cap,
				   NULL);
	if (!cap->rb) {
		err = -errno;
		rs_warn("capture: ring buffer: %s\n", rs_strerror(err));
		goto fail;
	}
	rs_info("capture: started on hook %s, storing in %s\n", cap->hook, cap->store_dir);
	*capp = cap;
	return 0;
fail:
	rs_capture_stop(cap);
	return err;
}

int rs_capture_poll(struct rs_capture *cap, int timeout_ms)
{
	int n, m;

	n = ring_buffer__poll(cap->rb, timeout_ms);
	if (n == -EINTR)
		n = 0;
	if (n < 0)
		return n;
	/* records submitted without wakeup (chunks) may wait behind the last wakeup */
	m = ring_buffer__consume(cap->rb);
	if (m < 0)
		return m == -EINTR ? n : m;
	return n + m;
}

const char *rs_capture_hook(const struct rs_capture *cap)
{
	return cap ? cap->hook : NULL;
}

int rs_capture_get(struct rs_capture *cap, uint32_t prog_id, struct rs_prog *out)
{
	size_t i;

	rs_prog_init(out);
	for (i = cap->prog_cnt; i-- > 0;)
		if (cap->progs[i].id == prog_id)
			return rs_prog_copy(out, &cap->progs[i]);
	if (!cap->store_dir[0])
		return -RS_ERR_NOT_FOUND;
	return rs_capture_load_stored(cap->store_dir, prog_id, out);
}

size_t rs_capture_dropped(const struct rs_capture *cap)
{
	return cap->dropped;
}

void rs_capture_stop(struct rs_capture *cap)
{
	size_t i;

	if (!cap)
		return;
	ring_buffer__free(cap->rb);
	capture__destroy(cap->skel);
	for (i = 0; i < cap->pend_cnt; i++)
		pending_free(&cap->pend[i]);
	free(cap->pend);
	for (i = 0; i < cap->prog_cnt; i++)
		rs_prog_free(&cap->progs[i]);
	free(cap->progs);
	if (cap->mounted_tracefs && umount(TRACEFS))
		rs_debug("capture: tracefs stays mounted: %s\n", rs_strerror(-errno));
	free(cap);
}
