// SPDX-License-Identifier: BSD-2-Clause
/*
 * replay_prog.c - programs loaded in isolation for replay.
 *
 * A replayed program must never touch live state: from an ELF object every map is created
 * fresh (pin paths cleared, so libbpf neither reuses nor pins anything); from a loaded program
 * (or an rs_prog that refers to live maps by id) every map is cloned - same type, sizes,
 * flags and BTF, contents copied - and the program is loaded against the clones.  PROG_ARRAY
 * clones stay empty (their live targets would write live maps): tail calls fall through.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/btf.h>

#include "agent/agent.h"
#include "instrument/replay_internal.h"

static bool supported_type(uint32_t type)
{
	return type == BPF_PROG_TYPE_XDP || type == BPF_PROG_TYPE_SCHED_CLS;
}

/*
 * Isolated hash maps get a zero hash seed (BPF_F_ZERO_SEED): the kernel otherwise seeds every
 * hash map at random, so two instances of one program put the same keys into different
 * buckets and pay different collision and LRU costs for the same trace - a difference between
 * the instances, not between the programs, of several percent on l4lb (docs/replay.md).  The
 * seed changes where keys live, never what a lookup returns.
 */
static uint32_t isolated_map_flags(uint32_t type, uint32_t flags)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
		return flags | BPF_F_ZERO_SEED;
	default:
		return flags;
	}
}

void rs_replay_close(struct rs_replay_prog *rp)
{
	size_t i;

	if (!rp)
		return;
	for (i = 0; i < rp->map_cnt; i++)
		if (rp->maps[i].owned && rp->maps[i].fd >= 0)
			close(rp->maps[i].fd);
	free(rp->maps);
	if (rp->src) {
		rs_prog_free(rp->src);
		free(rp->src);
	}
	if (rp->obj)
		bpf_object__close(rp->obj);
	else if (rp->fd >= 0)
		close(rp->fd);
	free(rp);
}

const char *rs_replay_name(const struct rs_replay_prog *rp) { return rp->name; }
const char *rs_replay_origin(const struct rs_replay_prog *rp) { return rp->origin; }
int rs_replay_fd(const struct rs_replay_prog *rp) { return rp->fd; }
uint32_t rs_replay_prog_type(const struct rs_replay_prog *rp) { return rp->type; }
uint32_t rs_replay_expected_attach_type(const struct rs_replay_prog *rp)
{
	return rp->expected_attach_type;
}
uint32_t rs_replay_prog_flags(const struct rs_replay_prog *rp) { return rp->prog_flags; }

int rs_replay_map_fd(const struct rs_replay_prog *rp, const char *name)
{
	size_t i;

	for (i = 0; i < rp->map_cnt; i++)
		if (!strcmp(rp->maps[i].name, name) || !strcmp(rp->maps[i].kname, name))
			return rp->maps[i].fd;
	return -ENOENT;
}

static int add_map(struct rs_replay_prog *rp, const char *name, int fd, bool owned)
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	struct rs_replay_map *m;
	int err;

	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err)
		return -errno;
	m = realloc(rp->maps, (rp->map_cnt + 1) * sizeof(*m));
	if (!m)
		return -ENOMEM;
	rp->maps = m;
	m = &rp->maps[rp->map_cnt++];
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name ?: info.name);
	snprintf(m->kname, sizeof(m->kname), "%s", info.name);
	m->fd = fd;
	m->owned = owned;
	m->type = info.type;
	m->key_size = info.key_size;
	m->value_size = info.value_size;
	m->max_entries = info.max_entries;
	m->flags = info.map_flags;
	return 0;
}

static struct bpf_program *pick_program(struct bpf_object *obj, const char *path,
					const char *want)
{
	struct bpf_program *p;
	char names[512] = "";
	size_t n = 0;

	bpf_object__for_each_program(p, obj) {
		if (want && !strcmp(bpf_program__name(p), want))
			return p;
		if (!want && supported_type(bpf_program__type(p)))
			return p;
		n += snprintf(names + n, n < sizeof(names) ? sizeof(names) - n : 0, "%s%s",
			      n ? ", " : "", bpf_program__name(p));
	}
	if (want)
		rs_warn("%s: no program named '%s' (programs: %s)", path, want,
			*names ? names : "none");
	else
		rs_warn("%s: no XDP or TC program (programs: %s)", path, *names ? names : "none");
	return NULL;
}

int rs_replay_open_object(const char *path, const struct rs_replay_open_opts *opts,
			  struct rs_replay_prog **out)
{
	const struct rs_scenario *sc = RS_OPTS_GET(opts, scenario, NULL);
	const char *want = RS_OPTS_GET(opts, prog_name, NULL);
	struct rs_replay_prog *rp;
	struct bpf_program *prog, *p;
	struct bpf_map *map;
	int err;

	*out = NULL;
	rp = calloc(1, sizeof(*rp));
	if (!rp)
		return -ENOMEM;
	rp->fd = -1;
	rp->obj = bpf_object__open_file(path, NULL);
	err = libbpf_get_error(rp->obj);
	if (err) {
		rp->obj = NULL;
		rs_warn("%s: cannot open BPF object: %s", path, rs_strerror(err));
		err = err == -ENOENT ? err : -RS_ERR_FORMAT;
		goto err;
	}
	prog = pick_program(rp->obj, path, want);
	if (!prog) {
		err = -RS_ERR_NOT_FOUND;
		goto err;
	}
	if (!supported_type(bpf_program__type(prog))) {
		rs_warn("%s: program '%s' is of type %s, not XDP or TC", path,
			bpf_program__name(prog), rs_prog_type_name(bpf_program__type(prog)));
		err = -RS_ERR_PROG_TYPE;
		goto err;
	}
	bpf_object__for_each_program(p, rp->obj)
		bpf_program__set_autoload(p, p == prog);
	/* fresh private maps: never reuse or create pins */
	bpf_object__for_each_map(map, rp->obj) {
		err = bpf_map__set_pin_path(map, NULL);
		if (!err && !bpf_map__is_internal(map))
			err = bpf_map__set_map_flags(map, isolated_map_flags(bpf_map__type(map),
						     bpf_map__map_flags(map)));
		if (err)
			goto err;
	}
	if (RS_OPTS_GET(opts, prepare, NULL)) {
		err = opts->prepare(rp->obj, prog, opts->prepare_ctx);
		if (err)
			goto err;
	}
	err = bpf_object__load(rp->obj);
	if (err) {
		rs_warn("%s: program '%s': load failed: %s (-v shows the verifier log)", path,
			bpf_program__name(prog), rs_strerror(err));
		err = -RS_ERR_VERIFIER;
		goto err;
	}
	snprintf(rp->name, sizeof(rp->name), "%s", bpf_program__name(prog));
	snprintf(rp->origin, sizeof(rp->origin), "%s:%s", path, rp->name);
	rp->fd = bpf_program__fd(prog);
	rp->type = bpf_program__type(prog);
	rp->expected_attach_type = bpf_program__expected_attach_type(prog);
	rp->prog_flags = bpf_program__flags(prog);
	bpf_object__for_each_map(map, rp->obj) {
		if (bpf_map__fd(map) < 0)
			continue;
		err = add_map(rp, bpf_map__name(map), bpf_map__fd(map), false);
		if (err)
			goto err;
	}
	if (sc) {
		err = rs_scenario_apply_object(sc, rp->obj);
		if (err)
			goto err;
	}
	*out = rp;
	return 0;
err:
	rs_replay_close(rp);
	return err;
}

static bool copyable(uint32_t type)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
	case BPF_MAP_TYPE_LPM_TRIE:
	case BPF_MAP_TYPE_DEVMAP:
	case BPF_MAP_TYPE_DEVMAP_HASH:
	case BPF_MAP_TYPE_CPUMAP:
		return true;
	default:
		return false;
	}
}

/* The clone is fresh: batch copies (instrument/mapcopy.c), zero array values skipped. */
static int copy_contents(int src, int dst, const struct bpf_map_info *info)
{
	RS_OPTS(rs_map_copy_opts, o, .dst_empty = true);

	return rs_map_copy(src, dst, info, &o);
}

/* Clone live map `id`; returns the clone's fd and its kernel id in *clone_id. */
static int clone_map(uint32_t id, uint32_t *clone_id)
{
	LIBBPF_OPTS(bpf_map_create_opts, co);
	struct bpf_map_info info = {}, cinfo = {};
	uint32_t len = sizeof(info);
	int src, dst = -1, btf_fd = -1, err;

	src = bpf_map_get_fd_by_id(id);
	if (src < 0) {
		err = -errno;
		rs_warn("map %u: cannot open: %s", id, rs_strerror(err));
		return err;
	}
	if (bpf_obj_get_info_by_fd(src, &info, &len)) {
		err = -errno;
		goto out;
	}
	if (info.type == BPF_MAP_TYPE_ARRAY_OF_MAPS || info.type == BPF_MAP_TYPE_HASH_OF_MAPS ||
	    info.type == BPF_MAP_TYPE_STRUCT_OPS) {
		rs_warn("map %u (%s): map type %u cannot be cloned for replay", id, info.name,
			info.type);
		err = -EOPNOTSUPP;
		goto out;
	}
	co.map_flags = isolated_map_flags(info.type, info.map_flags & ~(BPF_F_RDONLY | BPF_F_WRONLY));
	co.map_extra = info.map_extra;
	co.numa_node = 0;
	co.map_flags &= ~BPF_F_NUMA_NODE;
	if (info.btf_id && info.btf_value_type_id) {
		btf_fd = bpf_btf_get_fd_by_id(info.btf_id);
		if (btf_fd >= 0) {
			co.btf_fd = btf_fd;
			co.btf_key_type_id = info.btf_key_type_id;
			co.btf_value_type_id = info.btf_value_type_id;
		}
	}
	dst = bpf_map_create(info.type, info.name, info.key_size, info.value_size,
			     info.max_entries, &co);
	if (dst < 0) {
		err = -errno;
		rs_warn("map %u (%s): creating the clone: %s", id, info.name, rs_strerror(err));
		goto out;
	}
	if (copyable(info.type)) {
		err = copy_contents(src, dst, &info);
		if (err)
			goto out;
	} else if (info.type == BPF_MAP_TYPE_PROG_ARRAY) {
		rs_info("map %u (%s): prog array cloned empty: tail calls fall through in replay",
			id, info.name);
	}
	if ((info.map_flags & BPF_F_RDONLY_PROG) && bpf_map_freeze(dst)) {
		err = -errno;
		rs_warn("map %u (%s): freezing the clone: %s", id, info.name, rs_strerror(err));
		goto out;
	}
	len = sizeof(cinfo);
	if (bpf_obj_get_info_by_fd(dst, &cinfo, &len)) {
		err = -errno;
		goto out;
	}
	*clone_id = cinfo.id;
	err = 0;
out:
	if (btf_fd >= 0)
		close(btf_fd);
	close(src);
	if (err) {
		if (dst >= 0)
			close(dst);
		return err;
	}
	return dst;
}

static int apply_scenario_fds(struct rs_replay_prog *rp, const struct rs_scenario *sc)
{
	struct rs_scenario_map *sm;
	struct btf *btf = NULL;
	size_t i;
	int err;

	sm = calloc(rp->map_cnt + 1, sizeof(*sm));
	if (!sm)
		return -ENOMEM;
	for (i = 0; i < rp->map_cnt; i++) {
		struct bpf_map_info info = {};
		uint32_t len = sizeof(info);

		if (bpf_obj_get_info_by_fd(rp->maps[i].fd, &info, &len))
			continue;
		sm[i].name = rp->maps[i].name;
		sm[i].fd = rp->maps[i].fd;
		sm[i].type = info.type;
		sm[i].key_size = info.key_size;
		sm[i].value_size = info.value_size;
		sm[i].max_entries = info.max_entries;
		sm[i].btf_key_type_id = info.btf_key_type_id;
		sm[i].btf_value_type_id = info.btf_value_type_id;
		if (!btf && info.btf_id)
			btf = btf__load_from_kernel_by_id(info.btf_id);
		if (libbpf_get_error(btf))
			btf = NULL;
	}
	err = rs_scenario_apply(sc, btf, sm, rp->map_cnt, NULL);
	btf__free(btf);
	free(sm);
	return err;
}

int rs_replay_open_prog(const struct rs_prog *prog, const struct rs_replay_open_opts *opts,
			struct rs_replay_prog **out)
{
	const struct rs_scenario *sc = RS_OPTS_GET(opts, scenario, NULL);
	struct rs_replay_prog *rp;
	struct rs_prog copy;
	char *log = NULL;
	size_t i;
	int err;

	*out = NULL;
	rs_prog_init(&copy);
	if (!supported_type(prog->type)) {
		rs_warn("prog %u (%s): type %s is not XDP or TC", prog->id, prog->name,
			rs_prog_type_name(prog->type));
		return -RS_ERR_PROG_TYPE;
	}
	rp = calloc(1, sizeof(*rp));
	if (!rp)
		return -ENOMEM;
	rp->fd = -1;
	err = rs_prog_copy(&copy, prog);
	if (err)
		goto err;
	snprintf(rp->name, sizeof(rp->name), "%s", prog->name);
	if (RS_OPTS_GET(opts, origin, NULL))
		snprintf(rp->origin, sizeof(rp->origin), "%s", opts->origin);
	else if (prog->id)
		snprintf(rp->origin, sizeof(rp->origin), "id %u (%s)", prog->id, prog->name);
	else
		snprintf(rp->origin, sizeof(rp->origin), "%s", prog->name);
	rp->type = prog->type;
	rp->expected_attach_type = prog->expected_attach_type;
	rp->prog_flags = prog->prog_flags;
	for (i = 0; i < copy.map_cnt; i++) {
		uint32_t cid = 0;
		int fd;

		if (!copy.maps[i].id && copy.maps[i].init_value)
			continue;	/* created (frozen) by rs_prog_load from its contents */
		fd = clone_map(copy.maps[i].id, &cid);
		if (fd < 0) {
			err = fd;
			goto err;
		}
		err = add_map(rp, NULL, fd, true);
		if (err) {
			close(fd);
			goto err;
		}
		copy.maps[i].id = cid;
	}
	if (sc) {
		err = apply_scenario_fds(rp, sc);
		if (err)
			goto err;
	}
	log = calloc(1, 1 << 20);
	{
		struct rs_load_opts lo = { .sz = sizeof(lo), .log_buf = log,
					   .log_size = log ? 1 << 20 : 0, .log_level = log ? 1 : 0 };

		err = rs_prog_load(&copy, &lo);
	}
	if (err < 0) {
		rs_warn("%s (%s): load against cloned maps failed: %s", rp->origin, rp->name,
			rs_strerror(err));
		if (log && *log)
			rs_info("%s", log);
		goto err;
	}
	rp->fd = err;
	free(log);
	rp->src = malloc(sizeof(*rp->src));
	if (rp->src)
		*rp->src = copy;	/* kept for rs_replay_load_copies */
	else
		rs_prog_free(&copy);
	*out = rp;
	return 0;
err:
	free(log);
	rs_prog_free(&copy);
	rs_replay_close(rp);
	return err;
}

int rs_replay_open_id(uint32_t prog_id, const struct rs_replay_open_opts *opts,
		      struct rs_replay_prog **out)
{
	struct rs_lift_report rep = {};
	struct rs_prog p;
	int err;

	*out = NULL;
	rs_prog_init(&p);
	err = rs_fetch_original(prog_id, &p, &rep);
	if (err) {
		rs_warn("prog %u: no original bytecode: %s%s%s", prog_id, rs_strerror(err),
			*rep.msg ? ": " : "", rep.msg);
		rs_prog_free(&p);
		return err;
	}
	if (!p.id)
		p.id = prog_id;
	err = rs_replay_open_prog(&p, opts, out);
	rs_prog_free(&p);
	return err;
}

int rs_replay_load_copies(const struct rs_replay_prog *rp, int *fds, size_t n)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);
	struct rs_lift_report rep = {};
	struct rs_prog p;
	size_t i;
	int err;

	for (i = 0; i < n; i++)
		fds[i] = -1;
	rs_prog_init(&p);
	if (!rp->src) {
		if (bpf_obj_get_info_by_fd(rp->fd, &info, &len))
			return -errno;
		err = rs_fetch_original(info.id, &p, &rep);
		if (err) {
			rs_info("%s: no copies for timing: %s%s%s", rp->origin, rs_strerror(err),
				*rep.msg ? ": " : "", rep.msg);
			goto out;
		}
	}
	/* the maps by id are rp's own private maps: every copy shares them */
	for (i = 0; i < n; i++) {
		struct rs_load_opts lo = { .sz = sizeof(lo) };

		err = rs_prog_load(rp->src ?: &p, &lo);
		if (err < 0) {
			rs_info("%s: loading copy %zu for timing: %s", rp->origin, i + 1,
				rs_strerror(err));
			while (i--) {
				close(fds[i]);
				fds[i] = -1;
			}
			break;
		}
		fds[i] = err;
		err = 0;
	}
out:
	rs_prog_free(&p);
	return err;
}
