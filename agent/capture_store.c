// SPDX-License-Identifier: BSD-2-Clause
/*
 * capture_store.c - captured originals on disk: one JSON file per program, named
 * "<prog id>-<tag hex>.json" under the store directory (default RS_CAPTURE_DIR), so captures
 * survive the agent and program ids that wrap around stay apart by tag.  The format is
 * described in docs/capture.md ("respec-capture", version 1); instructions are stored in the
 * IDX form of optimizer/ir.h as one hex string (16 hex digits per instruction, memory order).
 *
 * Files are written to a temporary name and renamed, so readers never see half a capture.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <jansson.h>

#include "agent/agent.h"

#define STORE_FORMAT	"respec-capture"
#define STORE_VERSION	1

static void hex_encode(char *out, const void *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *b = data;
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hex_decode(const char *s, void *out, size_t len)
{
	return rs_hex_decode(s, out, len, 0) == (long)len ? 0 : -RS_ERR_FORMAT;
}

static int mkdir_p(const char *dir)
{
	char buf[4096];
	size_t i, len = strlen(dir);

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, dir, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -errno;
		if (i < len)
			buf[i] = '/';
	}
	return 0;
}

static json_t *prog_to_json(const struct rs_prog *p, const char *hook)
{
	json_t *o, *maps, *fi, *li;
	char tag[2 * BPF_TAG_SIZE + 1];
	char *insns;
	size_t i;

	insns = malloc(p->insn_cnt * sizeof(*p->insns) * 2 + 1);
	if (!insns)
		return NULL;
	hex_encode(insns, p->insns, p->insn_cnt * sizeof(*p->insns));
	hex_encode(tag, p->tag, BPF_TAG_SIZE);
	maps = json_array();
	fi = json_array();
	li = json_array();
	for (i = 0; i < p->map_cnt; i++) {
		const struct rs_map_ref *m = &p->maps[i];

		json_array_append_new(maps, json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:s}",
			"id", (json_int_t)m->id, "type", (json_int_t)m->type,
			"key_size", (json_int_t)m->key_size,
			"value_size", (json_int_t)m->value_size,
			"max_entries", (json_int_t)m->max_entries,
			"flags", (json_int_t)m->flags, "name", m->name));
	}
	for (i = 0; i < p->func_info_cnt; i++)
		json_array_append_new(fi, json_pack("[I,I]",
			(json_int_t)p->func_info[i].insn_off,
			(json_int_t)p->func_info[i].type_id));
	for (i = 0; i < p->line_info_cnt; i++)
		json_array_append_new(li, json_pack("[I,I,I,I]",
			(json_int_t)p->line_info[i].insn_off,
			(json_int_t)p->line_info[i].file_name_off,
			(json_int_t)p->line_info[i].line_off,
			(json_int_t)p->line_info[i].line_col));
	o = json_pack("{s:s,s:i,s:I,s:s,s:s,s:I,s:I,s:I,s:s,s:I,s:s,s:I,s:s,s:o,s:o,s:o}",
		"format", STORE_FORMAT, "version", STORE_VERSION,
		"prog_id", (json_int_t)p->id, "tag", tag, "name", p->name,
		"type", (json_int_t)p->type,
		"expected_attach_type", (json_int_t)p->expected_attach_type,
		"prog_flags", (json_int_t)p->prog_flags, "license", p->license,
		"btf_id", (json_int_t)p->btf_id, "hook", hook ? hook : "",
		"insn_cnt", (json_int_t)p->insn_cnt, "insns", insns,
		"maps", maps, "func_info", fi, "line_info", li);
	free(insns);
	return o;
}

int rs_capture_store(const char *dir, const struct rs_prog *p, const char *hook)
{
	char path[4096], tmp[4200], tag[2 * BPF_TAG_SIZE + 1];
	json_t *o;
	int err;

	if (!dir)
		dir = RS_CAPTURE_DIR;
	err = mkdir_p(dir);
	if (err) {
		rs_warn("capture: cannot create store directory %s: %s\n", dir, rs_strerror(err));
		return err;
	}
	hex_encode(tag, p->tag, BPF_TAG_SIZE);
	snprintf(path, sizeof(path), "%s/%u-%s.json", dir, p->id, tag);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	o = prog_to_json(p, hook);
	if (!o)
		return -ENOMEM;
	if (json_dump_file(o, tmp, JSON_COMPACT)) {
		err = errno ? -errno : -EIO;
		rs_warn("prog %u (%s): cannot write capture %s: %s\n", p->id, p->name, tmp,
			rs_strerror(err));
		goto out;
	}
	if (rename(tmp, path)) {
		err = -errno;
		unlink(tmp);
		rs_warn("prog %u (%s): cannot rename capture to %s: %s\n", p->id, p->name, path,
			rs_strerror(err));
		goto out;
	}
	rs_debug("prog %u (%s): capture stored in %s\n", p->id, p->name, path);
out:
	json_decref(o);
	return err;
}

static int json_u32(json_t *o, const char *key, uint32_t *v, const char *path)
{
	json_t *x = json_object_get(o, key);

	if (!json_is_integer(x) || json_integer_value(x) < 0 ||
	    json_integer_value(x) > UINT32_MAX) {
		rs_warn("%s: %s: missing or not a 32-bit unsigned integer\n", path, key);
		return -RS_ERR_FORMAT;
	}
	*v = json_integer_value(x);
	return 0;
}

static int json_str(json_t *o, const char *key, char *buf, size_t sz, const char *path)
{
	json_t *x = json_object_get(o, key);

	if (!json_is_string(x) || json_string_length(x) >= sz) {
		rs_warn("%s: %s: missing or not a string of less than %zu bytes\n", path, key, sz);
		return -RS_ERR_FORMAT;
	}
	memcpy(buf, json_string_value(x), json_string_length(x) + 1);
	return 0;
}

static int u32_array(json_t *a, size_t i, uint32_t *out, size_t n, const char *path,
		     const char *what)
{
	json_t *e = json_array_get(a, i);
	size_t k;

	if (!json_is_array(e) || json_array_size(e) != n)
		goto bad;
	for (k = 0; k < n; k++) {
		json_t *x = json_array_get(e, k);

		if (!json_is_integer(x) || json_integer_value(x) < 0 ||
		    json_integer_value(x) > UINT32_MAX)
			goto bad;
		out[k] = json_integer_value(x);
	}
	return 0;
bad:
	rs_warn("%s: %s[%zu]: expected %zu unsigned integers\n", path, what, i, n);
	return -RS_ERR_FORMAT;
}

/* Parse one capture file into out (treated as uninitialized, like rs_fetch_translated). */
int rs_capture_read_file(const char *path, struct rs_prog *out)
{
	char tag[2 * BPF_TAG_SIZE + 1], fmt[32];
	json_t *o, *x, *maps, *fi, *li;
	json_error_t jerr;
	const char *hex;
	size_t i, cnt;
	uint32_t ver;
	int err;

	rs_prog_init(out);
	if (access(path, R_OK))
		return -errno;
	o = json_load_file(path, 0, &jerr);
	if (!o) {
		rs_warn("%s:%d: %s\n", path, jerr.line, jerr.text);
		return -RS_ERR_FORMAT;
	}
	err = json_str(o, "format", fmt, sizeof(fmt), path);
	if (err)
		goto out;
	err = json_u32(o, "version", &ver, path);
	if (err)
		goto out;
	if (strcmp(fmt, STORE_FORMAT) || ver != STORE_VERSION) {
		rs_warn("%s: not a %s version %d file\n", path, STORE_FORMAT, STORE_VERSION);
		err = -RS_ERR_FORMAT;
		goto out;
	}
	if ((err = json_u32(o, "prog_id", &out->id, path)) ||
	    (err = json_u32(o, "type", &out->type, path)) ||
	    (err = json_u32(o, "expected_attach_type", &out->expected_attach_type, path)) ||
	    (err = json_u32(o, "prog_flags", &out->prog_flags, path)) ||
	    (err = json_u32(o, "btf_id", &out->btf_id, path)) ||
	    (err = json_str(o, "name", out->name, sizeof(out->name), path)) ||
	    (err = json_str(o, "license", out->license, sizeof(out->license), path)) ||
	    (err = json_str(o, "tag", tag, sizeof(tag), path)))
		goto out;
	err = hex_decode(tag, out->tag, BPF_TAG_SIZE);
	if (err) {
		rs_warn("%s: tag: not %d hex digits\n", path, 2 * BPF_TAG_SIZE);
		goto out;
	}
	x = json_object_get(o, "insns");
	hex = json_string_value(x);
	if (!hex || strlen(hex) % 16) {
		rs_warn("%s: insns: not a hex string of whole instructions\n", path);
		err = -RS_ERR_FORMAT;
		goto out;
	}
	cnt = strlen(hex) / 16;
	out->insns = calloc(cnt ? cnt : 1, sizeof(*out->insns));
	if (!out->insns) {
		err = -ENOMEM;
		goto out;
	}
	out->insn_cnt = cnt;
	err = hex_decode(hex, out->insns, cnt * sizeof(*out->insns));
	if (err) {
		rs_warn("%s: insns: bad hex digit\n", path);
		goto out;
	}
	maps = json_object_get(o, "maps");
	fi = json_object_get(o, "func_info");
	li = json_object_get(o, "line_info");
	if (!json_is_array(maps) || !json_is_array(fi) || !json_is_array(li)) {
		rs_warn("%s: maps, func_info and line_info must be arrays\n", path);
		err = -RS_ERR_FORMAT;
		goto out;
	}
	for (i = 0; i < json_array_size(maps); i++) {
		json_t *m = json_array_get(maps, i);
		struct rs_map_ref r = {};
		char where[64];

		snprintf(where, sizeof(where), "%s: maps[%zu]", path, i);
		if ((err = json_u32(m, "id", &r.id, where)) ||
		    (err = json_u32(m, "type", &r.type, where)) ||
		    (err = json_u32(m, "key_size", &r.key_size, where)) ||
		    (err = json_u32(m, "value_size", &r.value_size, where)) ||
		    (err = json_u32(m, "max_entries", &r.max_entries, where)) ||
		    (err = json_u32(m, "flags", &r.flags, where)) ||
		    (err = json_str(m, "name", r.name, sizeof(r.name), where)))
			goto out;
		err = rs_prog_add_map(out, &r);
		if (err < 0)
			goto out;
	}
	if (json_array_size(fi)) {
		out->func_info = calloc(json_array_size(fi), sizeof(*out->func_info));
		if (!out->func_info) {
			err = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < json_array_size(fi); i++) {
		err = u32_array(fi, i, &out->func_info[i].insn_off, 2, path, "func_info");
		if (err)
			goto out;
		out->func_info_cnt++;
	}
	if (json_array_size(li)) {
		out->line_info = calloc(json_array_size(li), sizeof(*out->line_info));
		if (!out->line_info) {
			err = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < json_array_size(li); i++) {
		err = u32_array(li, i, &out->line_info[i].insn_off, 4, path, "line_info");
		if (err)
			goto out;
		out->line_info_cnt++;
	}
	out->source = RS_SRC_CAPTURE;
	err = 0;
out:
	json_decref(o);
	if (err)
		rs_prog_free(out);
	return err;
}

/* Tag of the running program `id`; -ENOENT when it is gone. */
static int running_tag(uint32_t id, uint8_t tag[BPF_TAG_SIZE])
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int fd, err = 0;

	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		err = -errno;
	else
		memcpy(tag, info.tag, BPF_TAG_SIZE);
	close(fd);
	return err;
}

/*
 * Pick the capture of prog_id: when the program runs, the file whose tag is the running
 * program's tag (another tag means an earlier program with the same id); otherwise the newest.
 */
int rs_capture_load_stored(const char *dir, uint32_t prog_id, struct rs_prog *out)
{
	char prefix[32], best[4096] = "", want[2 * BPF_TAG_SIZE + 1] = "";
	uint8_t tag[BPF_TAG_SIZE];
	time_t best_mtime = 0;
	struct dirent *de;
	DIR *d;
	int err;

	rs_prog_init(out);
	if (!dir)
		dir = RS_CAPTURE_DIR;
	if (running_tag(prog_id, tag) == 0)
		hex_encode(want, tag, BPF_TAG_SIZE);
	d = opendir(dir);
	if (!d) {
		err = -errno;
		if (err == -ENOENT)
			return -RS_ERR_NOT_FOUND;
		rs_warn("capture store %s: %s\n", dir, rs_strerror(err));
		return err;
	}
	snprintf(prefix, sizeof(prefix), "%u-", prog_id);
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		char path[4096];
		struct stat st;
		size_t len = strlen(n);

		if (strncmp(n, prefix, strlen(prefix)) || len != strlen(prefix) + 16 + 5 ||
		    strcmp(n + len - 5, ".json"))
			continue;
		if (want[0] && strncmp(n + strlen(prefix), want, 16))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, n);
		if (stat(path, &st))
			continue;
		if (!best[0] || st.st_mtime > best_mtime) {
			snprintf(best, sizeof(best), "%s", path);
			best_mtime = st.st_mtime;
		}
	}
	closedir(d);
	if (!best[0])
		return -RS_ERR_NOT_FOUND;
	err = rs_capture_read_file(best, out);
	if (!err && out->id != prog_id) {
		rs_warn("%s: holds prog %u, not %u\n", best, out->id, prog_id);
		rs_prog_free(out);
		return -RS_ERR_FORMAT;
	}
	return err;
}
