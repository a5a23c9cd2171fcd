// SPDX-License-Identifier: BSD-2-Clause
/*
 * scenario_encode.c - JSON keys and values of scenario files (docs/scenario.md) encoded into
 * map bytes, guided by BTF: ints, enums, floats, arrays, structs/unions (bitfields, anonymous
 * members), __be16/32/64 typedefs big-endian, IPv4/IPv6/MAC/CIDR/"hex:" strings.
 *
 * Errors name the JSON path of the offending value, for example
 * "l4lb-16x64.json: maps.vip_map[3].key.port: expected a number".
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "instrument/instrument.h"

/* ---- JSON path used in messages ---------------------------------------------------------- */

struct jpath {
	char buf[512];
	size_t len;
};

static size_t jpath_push(struct jpath *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t jpath_push(struct jpath *p, const char *fmt, ...)
{
	size_t old = p->len;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(p->buf + p->len, sizeof(p->buf) - p->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		p->len += (size_t)n < sizeof(p->buf) - p->len ? (size_t)n : sizeof(p->buf) - p->len - 1;
	return old;
}

static void jpath_pop(struct jpath *p, size_t old)
{
	p->len = old;
	p->buf[old] = '\0';
}

/* ---- scalar parsing ---------------------------------------------------------------------- */

/* "hex:0011.." into buf (at most max bytes); returns byte count or -1. */
static long parse_hex(const char *s, uint8_t *buf, size_t max)
{
	return rs_hex_decode(s + 4, buf, max, 0);
}

static bool is_hex_str(const char *s)
{
	return strncmp(s, "hex:", 4) == 0;
}

static bool parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char extra;
	int i;

	if (strlen(s) != 17)
		return false;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &extra) != 6)
		return false;
	for (i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return true;
}

/*
 * A JSON number or numeric string into a 64-bit pattern.  *neg is set for negative values
 * (the pattern is then the two's complement).
 */
static int json_to_u64(json_t *v, uint64_t *out, bool *neg)
{
	*neg = false;
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		*neg = i < 0;
		*out = (uint64_t)i;
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);

		if (d != (double)(long long)d)
			return -EINVAL;
		*neg = d < 0;
		*out = (uint64_t)(long long)d;
		return 0;
	}
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;

		if (!*s)
			return -EINVAL;
		errno = 0;
		if (s[0] == '-') {
			long long i = strtoll(s, &end, 0);

			*neg = i < 0;
			*out = (uint64_t)i;
		} else {
			*out = strtoull(s, &end, 0);
		}
		if (errno || *end)
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

/* Store the low `size` bytes of v in host or big-endian order. */
static void store_int(uint8_t *dst, size_t size, uint64_t v, bool big_endian)
{
	size_t i;

	for (i = 0; i < size && i < 8; i++) {
		uint8_t b = (uint8_t)(v >> (8 * i));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		bool be = big_endian;
#else
		bool be = !big_endian;
#endif
		if (be)
			dst[size - 1 - i] = b;
		else
			dst[i] = b;
	}
}

static int check_range(uint64_t v, bool neg, unsigned int bits, bool is_signed)
{
	if (bits >= 64)
		return neg && !is_signed ? -ERANGE : 0;
	if (neg) {
		int64_t s = (int64_t)v;

		if (!is_signed || s < -((int64_t)1 << (bits - 1)))
			return -ERANGE;
		return 0;
	}
	/* unsigned patterns up to 2^bits - 1 are accepted for signed fields too */
	return v >> bits ? -ERANGE : 0;
}

/* ---- BTF-guided encoder ------------------------------------------------------------------- */

struct enc {
	const struct btf *btf;
	struct jpath path;
};

static int enc_err(struct enc *e, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int enc_err(struct enc *e, int err, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rs_warn("%s: %s", e->path.buf, msg);
	return err;
}

/* Skip typedefs and modifiers; *be is set when a __be16/32/64 typedef is crossed. */
static const struct btf_type *skip_mods(const struct btf *btf, uint32_t *id, bool *be)
{
	const struct btf_type *t = btf__type_by_id(btf, *id);

	while (t && (btf_is_typedef(t) || btf_is_mod(t) || btf_kind(t) == BTF_KIND_TYPE_TAG)) {
		if (btf_is_typedef(t)) {
			const char *n = btf__name_by_offset(btf, t->name_off);

			if (n && (!strcmp(n, "__be16") || !strcmp(n, "__be32") ||
				  !strcmp(n, "__be64")))
				*be = true;
		}
		*id = t->type;
		t = btf__type_by_id(btf, *id);
	}
	return t;
}

static int encode_type(struct enc *e, uint32_t id, json_t *v, uint8_t *buf, size_t size);

static int encode_int(struct enc *e, const struct btf_type *t, bool be, json_t *v,
		      uint8_t *buf, size_t size)
{
	unsigned int bits = btf_int_bits(t);
	bool is_signed = btf_int_encoding(t) & BTF_INT_SIGNED;
	uint64_t x;
	bool neg;

	if (t->size > size)
		return enc_err(e, -EINVAL, "%u-byte integer does not fit in %zu bytes", t->size, size);
	if (json_is_string(v) && t->size == 4 && strchr(json_string_value(v), '.')) {
		struct in_addr a;

		if (inet_pton(AF_INET, json_string_value(v), &a) != 1)
			return enc_err(e, -EINVAL, "bad IPv4 address \"%s\"", json_string_value(v));
		memcpy(buf, &a, 4);	/* network byte order in memory */
		return 0;
	}
	if (json_is_string(v) && is_hex_str(json_string_value(v))) {
		uint8_t tmp[16];
		long n = parse_hex(json_string_value(v), tmp, sizeof(tmp));

		if (n != (long)t->size)
			return enc_err(e, -EINVAL, "expected \"hex:\" with %u bytes", t->size);
		memcpy(buf, tmp, t->size);
		return 0;
	}
	if (t->size > 8)
		return enc_err(e, -EINVAL, "%u-byte integer: use \"hex:\"", t->size);
	if (json_to_u64(v, &x, &neg))
		return enc_err(e, -EINVAL, "expected a number");
	if (check_range(x, neg, bits, is_signed))
		return enc_err(e, -ERANGE, "value out of range for a %u-bit %s integer", bits,
			       is_signed ? "signed" : "unsigned");
	store_int(buf, t->size, x, be);
	return 0;
}

static int encode_enum(struct enc *e, const struct btf_type *t, bool be, json_t *v,
		       uint8_t *buf, size_t size)
{
	uint16_t i, n = btf_vlen(t);
	uint64_t x;
	bool neg;

	if (t->size > size || t->size > 8)
		return enc_err(e, -EINVAL, "%u-byte enum does not fit", t->size);
	if (json_is_string(v) && json_to_u64(v, &x, &neg)) {
		const char *s = json_string_value(v);

		for (i = 0; i < n; i++) {
			const char *name;
			uint64_t val;

			if (btf_is_enum(t)) {
				name = btf__name_by_offset(e->btf, btf_enum(t)[i].name_off);
				val = (uint64_t)(int64_t)btf_enum(t)[i].val;
			} else {
				name = btf__name_by_offset(e->btf, btf_enum64(t)[i].name_off);
				val = btf_enum64_value(&btf_enum64(t)[i]);
			}
			if (name && !strcmp(name, s)) {
				store_int(buf, t->size, val, be);
				return 0;
			}
		}
		return enc_err(e, -EINVAL, "\"%s\" is not a member of the enum", s);
	}
	if (json_to_u64(v, &x, &neg))
		return enc_err(e, -EINVAL, "expected a number or an enumerator name");
	if (check_range(x, neg, t->size * 8, true))
		return enc_err(e, -ERANGE, "value out of range for a %u-byte enum", t->size);
	store_int(buf, t->size, x, be);
	return 0;
}

static int encode_float(struct enc *e, const struct btf_type *t, json_t *v, uint8_t *buf)
{
	if (!json_is_number(v))
		return enc_err(e, -EINVAL, "expected a number");
	if (t->size == 4) {
		float f = (float)json_number_value(v);

		memcpy(buf, &f, 4);
	} else if (t->size == 8) {
		double d = json_number_value(v);

		memcpy(buf, &d, 8);
	} else {
		return enc_err(e, -EINVAL, "%u-byte float not supported", t->size);
	}
	return 0;
}

/* Strings for byte-sized storage: hex, IPv6, IPv4, MAC, or plain characters for char arrays. */
static int encode_bytes_str(struct enc *e, const char *s, uint8_t *buf, size_t bytes,
			    bool char_array)
{
	uint8_t tmp[16];

	if (is_hex_str(s)) {
		long n = parse_hex(s, buf, bytes);

		if (n < 0)
			return enc_err(e, -EINVAL, "bad \"hex:\" string or more than %zu bytes",
				       bytes);
		return 0;
	}
	if (strchr(s, ':') && inet_pton(AF_INET6, s, tmp) == 1) {
		if (bytes < 16)
			return enc_err(e, -EINVAL, "IPv6 address needs 16 bytes, field has %zu",
				       bytes);
		memcpy(buf, tmp, 16);
		return 0;
	}
	if (parse_mac(s, tmp)) {
		if (bytes < 6)
			return enc_err(e, -EINVAL, "MAC address needs 6 bytes, field has %zu", bytes);
		memcpy(buf, tmp, 6);
		return 0;
	}
	if (inet_pton(AF_INET, s, tmp) == 1) {
		if (bytes < 4)
			return enc_err(e, -EINVAL, "IPv4 address needs 4 bytes, field has %zu",
				       bytes);
		memcpy(buf, tmp, 4);
		return 0;
	}
	if (char_array) {
		size_t n = strlen(s);

		if (n > bytes)
			return enc_err(e, -EINVAL, "string longer than %zu bytes", bytes);
		memcpy(buf, s, n);
		return 0;
	}
	return enc_err(e, -EINVAL, "expected an address, \"hex:\" or an array, got \"%s\"", s);
}

static int encode_array(struct enc *e, const struct btf_type *t, json_t *v,
			uint8_t *buf, size_t size)
{
	const struct btf_array *a = btf_array(t);
	uint32_t elem_id = a->type;
	const struct btf_type *et;
	bool be = false;
	int64_t esz;
	size_t i, total;
	int err;

	esz = btf__resolve_size(e->btf, elem_id);
	if (esz <= 0)
		return enc_err(e, -EINVAL, "array element of unknown size");
	total = (size_t)esz * a->nelems;
	if (total > size)
		return enc_err(e, -EINVAL, "%zu-byte array does not fit in %zu bytes", total, size);
	et = skip_mods(e->btf, &elem_id, &be);
	if (json_is_string(v)) {
		bool chars = et && btf_is_int(et) && et->size == 1;

		return encode_bytes_str(e, json_string_value(v), buf, total, chars);
	}
	if (!json_is_array(v))
		return enc_err(e, -EINVAL, "expected an array or an address string");
	if (json_array_size(v) > a->nelems)
		return enc_err(e, -EINVAL, "%zu elements for an array of %u",
			       json_array_size(v), a->nelems);
	for (i = 0; i < json_array_size(v); i++) {
		size_t old = jpath_push(&e->path, "[%zu]", i);

		err = encode_type(e, a->type, json_array_get(v, i), buf + i * esz, (size_t)esz);
		jpath_pop(&e->path, old);
		if (err)
			return err;
	}
	return 0;
}

/* Find member `name` in struct/union t, looking through anonymous members. */
static bool find_member(const struct btf *btf, const struct btf_type *t, const char *name,
			uint32_t *bit_off, uint32_t *type_id, uint32_t *bitfield)
{
	const struct btf_member *m = btf_members(t);
	uint16_t i, n = btf_vlen(t);

	for (i = 0; i < n; i++, m++) {
		const char *mn = btf__name_by_offset(btf, m->name_off);
		uint32_t off = btf_member_bit_offset(t, i);

		if (mn && *mn) {
			if (strcmp(mn, name))
				continue;
			*bit_off = off;
			*type_id = m->type;
			*bitfield = btf_member_bitfield_size(t, i);
			return true;
		} else {
			uint32_t id = m->type;
			bool be = false;
			const struct btf_type *mt = skip_mods(btf, &id, &be);

			if (mt && btf_is_composite(mt) &&
			    find_member(btf, mt, name, bit_off, type_id, bitfield)) {
				*bit_off += off;
				return true;
			}
		}
	}
	return false;
}

static int encode_bitfield(struct enc *e, uint32_t type_id, json_t *v, uint8_t *buf,
			   size_t size, uint32_t bit_off, uint32_t bits)
{
	bool be = false;
	const struct btf_type *t = skip_mods(e->btf, &type_id, &be);
	bool is_signed = t && btf_is_int(t) && (btf_int_encoding(t) & BTF_INT_SIGNED);
	uint64_t x;
	uint32_t i;
	bool neg;

	if (json_to_u64(v, &x, &neg))
		return enc_err(e, -EINVAL, "expected a number");
	if (check_range(x, neg, bits, is_signed || (t && btf_is_any_enum(t))))
		return enc_err(e, -ERANGE, "value out of range for a %u-bit field", bits);
	if ((bit_off + bits + 7) / 8 > size)
		return enc_err(e, -EINVAL, "bitfield outside the value");
	/* little-endian bit numbering, as clang lays bitfields out on LE targets */
	for (i = 0; i < bits; i++) {
		uint32_t pos = bit_off + i;

		if ((x >> i) & 1)
			buf[pos / 8] |= (uint8_t)(1u << (pos % 8));
	}
	return 0;
}

/* "a.b.c.d/n" or "x::/n" for an LPM key struct { u32 prefixlen; bytes }. */
static int encode_cidr_key(struct enc *e, const struct btf_type *t, const char *s,
			   uint8_t *buf, size_t size)
{
	const struct btf_member *m = btf_members(t);
	const char *n0, *slash = strrchr(s, '/');
	char addr[64];
	uint8_t tmp[16];
	long plen;
	char *end;
	int alen;

	if (btf_vlen(t) != 2 || !slash || (size_t)(slash - s) >= sizeof(addr))
		return -ENOENT;
	n0 = btf__name_by_offset(e->btf, m[0].name_off);
	if (!n0 || strcmp(n0, "prefixlen"))
		return -ENOENT;
	memcpy(addr, s, slash - s);
	addr[slash - s] = '\0';
	if (inet_pton(AF_INET, addr, tmp) == 1)
		alen = 4;
	else if (inet_pton(AF_INET6, addr, tmp) == 1)
		alen = 16;
	else
		return enc_err(e, -EINVAL, "bad prefix \"%s\"", s);
	plen = strtol(slash + 1, &end, 10);
	if (*end || plen < 0 || plen > alen * 8)
		return enc_err(e, -EINVAL, "bad prefix length in \"%s\"", s);
	if (btf_member_bit_offset(t, 1) / 8 + alen > size || t->size < 4 + (uint32_t)alen)
		return enc_err(e, -EINVAL, "%d-byte address does not fit the key", alen);
	store_int(buf, 4, (uint64_t)plen, false);
	memcpy(buf + btf_member_bit_offset(t, 1) / 8, tmp, alen);
	return 0;
}

static int encode_composite(struct enc *e, const struct btf_type *t, json_t *v,
			    uint8_t *buf, size_t size)
{
	const char *name;
	json_t *mv;
	int err;

	if (t->size > size)
		return enc_err(e, -EINVAL, "%u-byte struct does not fit in %zu bytes", t->size, size);
	if (json_is_string(v)) {
		const char *s = json_string_value(v);

		if (is_hex_str(s)) {
			long n = parse_hex(s, buf, t->size);

			if (n != (long)t->size)
				return enc_err(e, -EINVAL, "expected \"hex:\" with %u bytes", t->size);
			return 0;
		}
		if (btf_is_struct(t)) {
			err = encode_cidr_key(e, t, s, buf, size);
			if (err != -ENOENT)
				return err;
		}
	}
	if (!json_is_object(v))
		return enc_err(e, -EINVAL, "expected an object with member names");
	json_object_foreach(v, name, mv) {
		uint32_t bit_off, type_id, bitfield;
		size_t old;

		if (!find_member(e->btf, t, name, &bit_off, &type_id, &bitfield)) {
			const char *tn = btf__name_by_offset(e->btf, t->name_off);

			return enc_err(e, -EINVAL, "no member \"%s\" in %s %s", name,
				       btf_is_struct(t) ? "struct" : "union",
				       tn && *tn ? tn : "(anon)");
		}
		old = jpath_push(&e->path, ".%s", name);
		if (bitfield)
			err = encode_bitfield(e, type_id, mv, buf, size, bit_off, bitfield);
		else if (bit_off % 8)
			err = enc_err(e, -EINVAL, "member not byte aligned");
		else
			err = encode_type(e, type_id, mv, buf + bit_off / 8, size - bit_off / 8);
		jpath_pop(&e->path, old);
		if (err)
			return err;
	}
	return 0;
}

static int encode_type(struct enc *e, uint32_t id, json_t *v, uint8_t *buf, size_t size)
{
	bool be = false;
	const struct btf_type *t = skip_mods(e->btf, &id, &be);

	if (!t)
		return enc_err(e, -EINVAL, "BTF type %u not found", id);
	switch (btf_kind(t)) {
	case BTF_KIND_INT:
		return encode_int(e, t, be, v, buf, size);
	case BTF_KIND_ENUM:
	case BTF_KIND_ENUM64:
		return encode_enum(e, t, be, v, buf, size);
	case BTF_KIND_FLOAT:
		return encode_float(e, t, v, buf);
	case BTF_KIND_ARRAY:
		return encode_array(e, t, v, buf, size);
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		return encode_composite(e, t, v, buf, size);
	default:
		return enc_err(e, -EINVAL, "cannot encode BTF kind %u", btf_kind(t));
	}
}

/* Without BTF: "hex:" of exactly `size` bytes, or an integer for 1/2/4/8-byte sizes. */
static int encode_raw(struct enc *e, json_t *v, uint8_t *buf, size_t size)
{
	uint64_t x;
	bool neg;

	if (json_is_string(v) && is_hex_str(json_string_value(v))) {
		long n = parse_hex(json_string_value(v), buf, size);

		if (n != (long)size)
			return enc_err(e, -EINVAL, "expected \"hex:\" with %zu bytes (no BTF)", size);
		return 0;
	}
	if ((size == 1 || size == 2 || size == 4 || size == 8) && !json_to_u64(v, &x, &neg)) {
		if (check_range(x, neg, size * 8, true))
			return enc_err(e, -ERANGE, "value out of range for %zu bytes", size);
		store_int(buf, size, x, false);
		return 0;
	}
	return enc_err(e, -EINVAL, "no BTF type: expected \"hex:\" with %zu bytes%s", size,
		       size <= 8 ? " or an integer" : "");
}

int rs_scenario_encode(const struct btf *btf, uint32_t type_id, json_t *v,
		       void *buf, size_t size, const char *what)
{
	struct enc e = { .btf = btf };

	jpath_push(&e.path, "%s", what ? what : "value");
	memset(buf, 0, size);
	if (!v)
		return enc_err(&e, -EINVAL, "missing");
	if (!btf || !type_id)
		return encode_raw(&e, v, buf, size);
	return encode_type(&e, type_id, v, buf, size);
}
