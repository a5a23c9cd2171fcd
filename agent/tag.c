// SPDX-License-Identifier: BSD-2-Clause
/*
 * tag.c - program tags as the running kernel computes them (bpf_prog_calc_tag()).
 *
 * The kernel hashes the instruction array exactly as the loader passed it, after zeroing the
 * imm of both halves of every ld_imm64 whose src_reg is BPF_PSEUDO_MAP_FD or
 * BPF_PSEUDO_MAP_VALUE (the second half only when it looks like a plain ld_imm64 tail: code,
 * regs and off all zero).  fd_array references (BPF_PSEUDO_MAP_IDX / _IDX_VALUE) are NOT
 * zeroed: their index is part of the hash.  The tag is the first 8 bytes of the digest:
 * SHA-1 up to Linux 6.17, SHA-256 from 6.18 on (the full digest is kept for signing).
 * Which one the running kernel uses is detected once with a tiny probe program.
 *
 * An rs_prog keeps map references in IDX form (ir.h); rs_tag_compute() hashes them in the
 * form ordinary loaders use (BPF_PSEUDO_MAP_FD / _VALUE, imm zeroed), which is what libbpf
 * and most loaders send.  rs_tag_compute_insns() hashes raw loader bytes as they are.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <openssl/evp.h>

#include "agent/agent.h"

static bool is_ldimm64(const struct bpf_insn *i)
{
	return i->code == (BPF_LD | BPF_IMM | BPF_DW);
}

/* The kernel's zeroing of map fds, in place. */
static void zero_map_fds(struct bpf_insn *insns, size_t cnt)
{
	bool was_ld_map = false;
	size_t i;

	for (i = 0; i < cnt; i++) {
		struct bpf_insn *d = &insns[i];

		if (!was_ld_map && is_ldimm64(d) &&
		    (d->src_reg == BPF_PSEUDO_MAP_FD || d->src_reg == BPF_PSEUDO_MAP_VALUE)) {
			was_ld_map = true;
			d->imm = 0;
		} else if (was_ld_map && d->code == 0 && d->dst_reg == 0 && d->src_reg == 0 &&
			   d->off == 0) {
			was_ld_map = false;
			d->imm = 0;
		} else {
			was_ld_map = false;
		}
	}
}

static int digest_tag(const void *data, size_t len, enum rs_tag_algo algo,
		      uint8_t tag[BPF_TAG_SIZE])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const EVP_MD *type;

	switch (algo) {
	case RS_TAG_SHA1:
		type = EVP_sha1();
		break;
	case RS_TAG_SHA256:
		type = EVP_sha256();
		break;
	default:
		return -EINVAL;
	}
	if (!EVP_Digest(data, len, md, &mdlen, type, NULL) || mdlen < BPF_TAG_SIZE) {
		rs_warn("tag: OpenSSL digest failed\n");
		return -EIO;
	}
	memcpy(tag, md, BPF_TAG_SIZE);
	return 0;
}

static int resolve_algo(enum rs_tag_algo *algo)
{
	if (*algo == RS_TAG_SHA1 || *algo == RS_TAG_SHA256)
		return 0;
	return rs_tag_detect(algo);
}

/*
 * Tag of a copy of insns: the kernel hashes the program with map fds zeroed; idx_to_fd first
 * turns the IDX forms of map references (rs_prog keeps them) back into the loader's fd forms.
 */
static int tag_of(const struct bpf_insn *insns, size_t cnt, bool idx_to_fd,
		  enum rs_tag_algo algo, uint8_t tag[BPF_TAG_SIZE])
{
	struct bpf_insn *buf;
	size_t i;
	int err;

	err = resolve_algo(&algo);
	if (err)
		return err;
	buf = malloc(cnt ? cnt * sizeof(*buf) : 1);
	if (!buf)
		return -ENOMEM;
	if (cnt)
		memcpy(buf, insns, cnt * sizeof(*buf));
	for (i = 0; idx_to_fd && i + 1 < cnt; i++) {
		if (!is_ldimm64(&buf[i]))
			continue;
		if (buf[i].src_reg == BPF_PSEUDO_MAP_IDX)
			buf[i].src_reg = BPF_PSEUDO_MAP_FD;
		else if (buf[i].src_reg == BPF_PSEUDO_MAP_IDX_VALUE)
			buf[i].src_reg = BPF_PSEUDO_MAP_VALUE;
		i++;
	}
	zero_map_fds(buf, cnt);
	err = digest_tag(buf, cnt * sizeof(*buf), algo, tag);
	free(buf);
	return err;
}

int rs_tag_compute_insns(const struct bpf_insn *insns, size_t cnt, enum rs_tag_algo algo,
			 uint8_t tag[BPF_TAG_SIZE])
{
	return tag_of(insns, cnt, false, algo, tag);
}

int rs_tag_compute(const struct rs_prog *p, enum rs_tag_algo algo, uint8_t tag[BPF_TAG_SIZE])
{
	return tag_of(p->insns, p->insn_cnt, true, algo, tag);
}

const char *rs_tag_algo_name(enum rs_tag_algo algo)
{
	switch (algo) {
	case RS_TAG_SHA1:
		return "sha1";
	case RS_TAG_SHA256:
		return "sha256";
	default:
		return "unknown";
	}
}

static enum rs_tag_algo detected_algo = RS_TAG_UNKNOWN;

int rs_tag_detect(enum rs_tag_algo *algo)
{
	/* r0 = 0x7e5bec; exit: any program type would do; socket filters need no attach type. */
	const struct bpf_insn probe[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0x7e5bec },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	uint8_t sha1[BPF_TAG_SIZE], sha256[BPF_TAG_SIZE];
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int fd, err;

	if (detected_algo != RS_TAG_UNKNOWN) {
		*algo = detected_algo;
		return 0;
	}
	fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "rs_tag_probe", "GPL", probe,
			   RS_ARRAY_SIZE(probe), NULL);
	if (fd < 0) {
		err = -errno;
		rs_warn("tag: cannot load the tag probe program: %s\n", rs_strerror(err));
		return err;
	}
	memset(&info, 0, sizeof(info));
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err) {
		err = -errno;
		rs_warn("tag: probe program info: %s\n", rs_strerror(err));
		goto out;
	}
	err = digest_tag(probe, sizeof(probe), RS_TAG_SHA1, sha1);
	if (err)
		goto out;
	err = digest_tag(probe, sizeof(probe), RS_TAG_SHA256, sha256);
	if (err)
		goto out;
	if (!memcmp(info.tag, sha256, BPF_TAG_SIZE)) {
		detected_algo = RS_TAG_SHA256;
	} else if (!memcmp(info.tag, sha1, BPF_TAG_SIZE)) {
		detected_algo = RS_TAG_SHA1;
	} else {
		rs_warn("tag: kernel tag of the probe matches neither SHA-1 nor SHA-256\n");
		err = -ENOTSUP;
		goto out;
	}
	rs_debug("tag: kernel computes program tags with %s\n", rs_tag_algo_name(detected_algo));
	*algo = detected_algo;
out:
	close(fd);
	return err;
}
