// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_capture.c - capture at load, on both hooks (syscall tracepoints and raw_tp).
 *
 * For each hook: load a libbpf object with maps (the agent's own bpf/capture.bpf.o: ring
 * buffer, hash map and .bss, i.e. BPF_PSEUDO_MAP_FD and BPF_PSEUDO_MAP_VALUE references) and
 * check that the capture of every program equals libbpf's final instructions byte for byte once
 * map fds are replaced by indexes into the captured maps[], ties to the right program id and
 * carries the kernel tag; load a program whose maps come through fd_array; load a 70000
 * instruction program (chunked copy); check that a failed load leaves nothing behind; reload
 * captures and require the same translated program as the running one; read them back from
 * the store.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/agent.h"
#include "tests/kernel/ktest.h"

#define LD_MAP(dst, src, imm0, imm1)						\
	{ .code = BPF_LD | BPF_IMM | BPF_DW, .dst_reg = dst, .src_reg = src, .imm = imm0 }, \
	{ .imm = imm1 }
#define MOV64_IMM(dst, v) { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = dst, .imm = v }
#define MOV64_REG(dst, src) { .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = dst, .src_reg = src }
#define EXIT_INSN() { .code = BPF_JMP | BPF_EXIT }

static char store_dir[] = "/tmp/rs-capture-test-XXXXXX";

static uint32_t fd_to_prog_id(int fd, struct bpf_prog_info *info)
{
	struct bpf_prog_info tmp;
	__u32 len = sizeof(tmp);

	if (!info)
		info = &tmp;
	memset(info, 0, sizeof(*info));
	if (bpf_obj_get_info_by_fd(fd, info, &len))
		return 0;
	return info->id;
}

static uint32_t map_fd_to_id(int fd, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	if (bpf_obj_get_info_by_fd(fd, info, &len))
		return 0;
	return info->id;
}

/* Poll until the capture of prog_id is there (5 s at most). */
static int wait_capture(struct rs_capture *cap, uint32_t id, struct rs_prog *out)
{
	int i;

	for (i = 0; i < 50; i++) {
		assert_true(rs_capture_poll(cap, 100) >= 0);
		if (rs_capture_get(cap, id, out) == 0)
			return 0;
	}
	return -ETIMEDOUT;
}

/* Number of stored captures of programs named `name` (other loads on the host may be stored
 * meanwhile, so count by name). */
static size_t count_stored_named(const char *name)
{
	struct dirent *de;
	char path[4096];
	struct rs_prog p;
	size_t n = 0;
	DIR *d = opendir(store_dir);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (!strstr(de->d_name, ".json"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", store_dir, de->d_name);
		if (rs_capture_read_file(path, &p))
			continue;
		if (!strcmp(p.name, name))
			n++;
		rs_prog_free(&p);
	}
	closedir(d);
	return n;
}

/* Translated instructions of a program fd; *cnt instructions, malloc'ed. */
static struct bpf_insn *xlated(int fd, size_t *cnt)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	struct bpf_insn *insns;
	__u32 n;

	memset(&info, 0, sizeof(info));
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	n = info.xlated_prog_len;
	insns = calloc(1, n);
	assert_non_null(insns);
	memset(&info, 0, sizeof(info));
	info.xlated_prog_len = n;
	info.xlated_prog_insns = (uintptr_t)insns;
	len = sizeof(info);
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	*cnt = n / sizeof(*insns);
	return insns;
}

static bool kernel_addr(const struct bpf_insn *i)
{
	uint64_t v = (uint64_t)(uint32_t)i[1].imm << 32 | (uint32_t)i[0].imm;

	return v >= 0xffff000000000000ULL;
}

/*
 * Reload a capture and require the same translated program as the running one.  ld_imm64 of
 * kernel addresses that are not maps (callback subprograms of bpf_loop) are per-load and
 * compared only for being addresses.
 */
static void check_reload(const struct rs_prog *p, int orig_fd)
{
	struct bpf_insn *a, *b;
	size_t na, nb, i;
	int fd;

	fd = rs_prog_load(p, NULL);
	assert_true(fd >= 0);
	a = xlated(orig_fd, &na);
	b = xlated(fd, &nb);
	assert_int_equal(na, nb);
	for (i = 0; i < na; i++) {
		if (a[i].code == (BPF_LD | BPF_IMM | BPF_DW) && a[i].src_reg == 0 &&
		    i + 1 < na && memcmp(&a[i], &b[i], 16) && kernel_addr(&a[i]) &&
		    kernel_addr(&b[i])) {
			i++;
			continue;
		}
		if (memcmp(&a[i], &b[i], sizeof(a[i])))
			fail_msg("prog %s: xlated insn %zu differs after reload", p->name, i);
	}
	free(a);
	free(b);
	close(fd);
}

/* fd_form: the loader referenced maps by fd, so the rs_prog hashes to the kernel tag. */
static void check_common(const struct rs_prog *p, int fd, bool fd_form)
{
	struct bpf_prog_info info;
	uint8_t tag[BPF_TAG_SIZE];
	struct rs_prog stored;

	assert_int_equal(p->id, fd_to_prog_id(fd, &info));
	assert_int_equal(p->source, RS_SRC_CAPTURE);
	assert_int_equal(p->type, info.type);
	assert_string_equal(p->name, info.name);
	assert_memory_equal(p->tag, info.tag, BPF_TAG_SIZE);
	assert_int_equal(rs_tag_compute(p, RS_TAG_UNKNOWN, tag), 0);
	if (fd_form)
		assert_memory_equal(tag, info.tag, BPF_TAG_SIZE);
	else
		assert_memory_not_equal(tag, info.tag, BPF_TAG_SIZE);
	if (info.btf_id)
		assert_int_equal(p->btf_id, info.btf_id);
	assert_int_equal(p->func_info_cnt, info.nr_func_info);
	assert_int_equal(p->line_info_cnt, info.nr_line_info);

	/* the store returns the same program */
	assert_int_equal(rs_capture_load_stored(store_dir, p->id, &stored), 0);
	assert_int_equal(stored.insn_cnt, p->insn_cnt);
	assert_memory_equal(stored.insns, p->insns, p->insn_cnt * sizeof(*p->insns));
	assert_int_equal(stored.map_cnt, p->map_cnt);
	if (p->map_cnt)
		assert_memory_equal(stored.maps, p->maps, p->map_cnt * sizeof(*p->maps));
	assert_memory_equal(stored.tag, p->tag, BPF_TAG_SIZE);
	assert_string_equal(stored.name, p->name);
	assert_string_equal(stored.license, p->license);
	assert_int_equal(stored.expected_attach_type, p->expected_attach_type);
	assert_int_equal(stored.func_info_cnt, p->func_info_cnt);
	rs_prog_free(&stored);
}

/* libbpf object with maps: captured == bpf_program__insns() with fds mapped to indexes. */
static void check_object(struct rs_capture *cap)
{
	const char *bdir = getenv("RS_BUILD_DIR");
	struct bpf_program *prog;
	struct bpf_object *obj;
	char path[4096];
	int progs = 0;

	snprintf(path, sizeof(path), "%s/bpf/capture.bpf.o", bdir ? bdir : "build");
	obj = bpf_object__open_file(path, NULL);
	assert_non_null(obj);
	assert_int_equal(bpf_object__load(obj), 0);
	bpf_object__for_each_program(prog, obj) {
		const struct bpf_insn *li = bpf_program__insns(prog);
		size_t cnt = bpf_program__insn_cnt(prog), i, refs = 0;
		int fd = bpf_program__fd(prog);
		struct rs_prog p;
		uint32_t id;

		if (fd < 0)
			continue;
		id = fd_to_prog_id(fd, NULL);
		assert_int_equal(wait_capture(cap, id, &p), 0);
		assert_int_equal(p.insn_cnt, cnt);
		assert_string_equal(p.license, "Dual BSD/GPL");
		assert_int_equal(p.expected_attach_type,
				 bpf_program__expected_attach_type(prog));
		for (i = 0; i < cnt; i++) {
			struct bpf_insn want = li[i];
			struct bpf_map_info mi;
			uint32_t mid;
			size_t k;

			if (li[i].code == (BPF_LD | BPF_IMM | BPF_DW) &&
			    (li[i].src_reg == BPF_PSEUDO_MAP_FD ||
			     li[i].src_reg == BPF_PSEUDO_MAP_VALUE)) {
				mid = map_fd_to_id(li[i].imm, &mi);
				assert_true(mid != 0);
				want.src_reg = li[i].src_reg == BPF_PSEUDO_MAP_FD ?
					       BPF_PSEUDO_MAP_IDX : BPF_PSEUDO_MAP_IDX_VALUE;
				assert_true(p.insns[i].imm >= 0 &&
					    (size_t)p.insns[i].imm < p.map_cnt);
				k = p.insns[i].imm;
				assert_int_equal(p.maps[k].id, mid);
				assert_int_equal(p.maps[k].type, mi.type);
				assert_int_equal(p.maps[k].key_size, mi.key_size);
				assert_int_equal(p.maps[k].value_size, mi.value_size);
				assert_int_equal(p.maps[k].max_entries, mi.max_entries);
				assert_string_equal(p.maps[k].name, mi.name);
				want.imm = k;
				refs++;
			}
			if (memcmp(&want, &p.insns[i], sizeof(want)))
				fail_msg("%s: insn %zu differs from libbpf's", p.name, i);
		}
		assert_true(refs > 0);
		check_common(&p, fd, true);
		check_reload(&p, fd);
		rs_prog_free(&p);
		progs++;
	}
	assert_true(progs >= 2);
	bpf_object__close(obj);
}

/* Maps through fd_array (BPF_PSEUDO_MAP_IDX*): captured bytes are the loader's bytes. */
static void check_fd_array(struct rs_capture *cap)
{
	int a = bpf_map_create(BPF_MAP_TYPE_ARRAY, "rs_cap_fa_a", 4, 8, 1, NULL);
	int h = bpf_map_create(BPF_MAP_TYPE_HASH, "rs_cap_fa_h", 4, 4, 8, NULL);
	struct bpf_insn insns[] = {
		/* *(u32 *)(r10 - 4) = 0; r2 = r10 - 4; r1 = map h; call lookup */
		{ .code = BPF_ST | BPF_MEM | BPF_W, .dst_reg = BPF_REG_10, .off = -4 },
		MOV64_REG(BPF_REG_2, BPF_REG_10),
		{ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_2, .imm = -4 },
		LD_MAP(BPF_REG_1, BPF_PSEUDO_MAP_IDX, 1, 0),
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_map_lookup_elem },
		LD_MAP(BPF_REG_3, BPF_PSEUDO_MAP_IDX_VALUE, 0, 4),
		{ .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_0, .src_reg = BPF_REG_3 },
		{ .code = BPF_ALU64 | BPF_AND | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		{ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		EXIT_INSN(),
	};
	int fds[2] = { a, h };
	LIBBPF_OPTS(bpf_prog_load_opts, o, .fd_array = fds);
	struct bpf_map_info mi;
	struct rs_prog p;
	int fd;

	assert_true(a >= 0 && h >= 0);
	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "rs_cap_fa", "GPL", insns, RS_ARRAY_SIZE(insns), &o);
	assert_true(fd >= 0);
	assert_int_equal(wait_capture(cap, fd_to_prog_id(fd, NULL), &p), 0);
	assert_int_equal(p.insn_cnt, RS_ARRAY_SIZE(insns));
	/* maps[] is in order of first use: h (loader's index 1) first, then a */
	assert_int_equal(p.map_cnt, 2);
	assert_int_equal(p.maps[0].id, map_fd_to_id(h, &mi));
	assert_int_equal(p.maps[0].type, BPF_MAP_TYPE_HASH);
	assert_string_equal(p.maps[0].name, "rs_cap_fa_h");
	assert_int_equal(p.maps[1].id, map_fd_to_id(a, &mi));
	assert_int_equal(p.maps[1].type, BPF_MAP_TYPE_ARRAY);
	insns[3].imm = 0;
	insns[6].imm = 1;
	assert_memory_equal(p.insns, insns, sizeof(insns));
	/* the tag of the rs_prog (fd form) differs: the loader hashed indexes */
	check_common(&p, fd, false);
	check_reload(&p, fd);
	rs_prog_free(&p);
	close(fd);
	close(a);
	close(h);
}

/* 70000 instructions: copied in chunks. */
static void check_big(struct rs_capture *cap)
{
	size_t n = 70000, i;
	struct bpf_insn *insns = calloc(n, sizeof(*insns));
	struct rs_prog p;
	int fd;

	assert_non_null(insns);
	for (i = 0; i + 1 < n; i++)
		insns[i] = (struct bpf_insn)MOV64_IMM(i % 6, (int32_t)(i * 2654435761u));
	insns[n - 2] = (struct bpf_insn)MOV64_IMM(BPF_REG_0, XDP_PASS);
	insns[n - 1] = (struct bpf_insn)EXIT_INSN();
	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "rs_cap_big", "GPL", insns, n, NULL);
	assert_true(fd >= 0);
	assert_int_equal(wait_capture(cap, fd_to_prog_id(fd, NULL), &p), 0);
	assert_int_equal(p.insn_cnt, n);
	assert_memory_equal(p.insns, insns, n * sizeof(*insns));
	check_common(&p, fd, true);
	rs_prog_free(&p);
	close(fd);
	free(insns);
}

/* A load the verifier rejects leaves no capture and counts as no loss. */
static void check_failed_load(struct rs_capture *cap)
{
	struct bpf_insn bad[] = { EXIT_INSN() };	/* r0 not initialized */
	size_t dropped = rs_capture_dropped(cap);
	int fd, i;

	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "rs_cap_bad", "GPL", bad, 1, NULL);
	assert_true(fd < 0);
	for (i = 0; i < 5; i++)
		rs_capture_poll(cap, 20);
	assert_int_equal(count_stored_named("rs_cap_bad"), 0);
	assert_int_equal(rs_capture_dropped(cap), dropped);
	/* the test can fail: the good programs of this test are there */
	assert_true(count_stored_named("rs_cap_fa") >= 1);
}

static void run_hook(bool raw, const char *want_hook)
{
	RS_OPTS(rs_capture_opts, opts, .store_dir = store_dir, .force_raw_tp = raw);
	struct rs_capture *cap = NULL;

	assert_int_equal(rs_capture_start(&opts, &cap), 0);
	assert_string_equal(rs_capture_hook(cap), want_hook);
	check_object(cap);
	check_fd_array(cap);
	check_big(cap);
	check_failed_load(cap);
	assert_int_equal(rs_capture_dropped(cap), 0);
	rs_capture_stop(cap);
}

static void test_tracepoint(void **state)
{
	run_hook(false, "tracepoint");
}

static void test_raw_tp(void **state)
{
	run_hook(true, "raw_tp");
}

static void test_store_missing(void **state)
{
	struct rs_prog p;

	assert_int_equal(rs_capture_load_stored(store_dir, 0x7ffffff0, &p), -RS_ERR_NOT_FOUND);
	assert_int_equal(rs_capture_load_stored("/nonexistent/rs-capture", 1, &p),
			 -RS_ERR_NOT_FOUND);
}

static int remove_store(void)
{
	struct dirent *de;
	char path[4096];
	DIR *d = opendir(store_dir);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", store_dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	return rmdir(store_dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tracepoint),
		cmocka_unit_test(test_raw_tp),
		cmocka_unit_test(test_store_missing),
	};
	int ret;

	ret = ktest_start();
	if (ret)
		return ret;
	if (!mkdtemp(store_dir)) {
		perror("mkdtemp");
		return 1;
	}
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	remove_store();
	return ret;
}
