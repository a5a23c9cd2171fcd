/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * instrument.h - measuring: scenarios (map contents from JSON, encoded through BTF), replay of
 * packets through programs, cost per packet, snapshots and profiles.
 */
#ifndef RS_INSTRUMENT_H
#define RS_INSTRUMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "optimizer/ir.h"

struct btf;
struct bpf_object;
typedef struct json_t json_t;

/* ==== scenarios (docs/scenario.md) ==================================================== */

struct rs_scenario;

/* Parse a scenario file.  Errors name the file and the JSON path ("scenario.json: maps.vip_map[3].key: ..."). */
int rs_scenario_load(const char *path, struct rs_scenario **sc);
void rs_scenario_free(struct rs_scenario *sc);
const char *rs_scenario_path(const struct rs_scenario *sc);
/* The "traffic" object (borrowed reference, NULL when absent). */
json_t *rs_scenario_traffic(const struct rs_scenario *sc);
/* The "updates" array (borrowed, NULL when absent). */
json_t *rs_scenario_updates(const struct rs_scenario *sc);

/*
 * Encode one JSON key or value for a map into bytes, guided by BTF type `type_id` of `btf`
 * (type_id 0 or btf NULL: only "hex:..." accepted).  `buf` has `size` bytes; it is zeroed first.
 * `what` names the place for error messages.
 */
int rs_scenario_encode(const struct btf *btf, uint32_t type_id, json_t *v,
		       void *buf, size_t size, const char *what);

/*
 * Fill the maps of a loaded object (or any map fds) from the scenario.  `map_fd_by_name`
 * resolves a scenario map name to an fd plus its BTF key/value type ids.  Maps named in the
 * scenario but absent from the program are an error naming the map.
 */
struct rs_scenario_map {
	const char *name;
	int fd;
	uint32_t type;			/* enum bpf_map_type */
	uint32_t key_size, value_size, max_entries;
	uint32_t btf_key_type_id, btf_value_type_id;
};
int rs_scenario_apply(const struct rs_scenario *sc, const struct btf *btf,
		      const struct rs_scenario_map *maps, size_t map_cnt,
		      const struct bpf_object *obj /* for PROG_ARRAY values, may be NULL */);
/* Convenience: fill every map of a libbpf object that the scenario names. */
int rs_scenario_apply_object(const struct rs_scenario *sc, struct bpf_object *obj);
/* Apply one entry of "updates" (index i) to the same maps. */
int rs_scenario_apply_update(const struct rs_scenario *sc, size_t i, const struct btf *btf,
			     const struct rs_scenario_map *maps, size_t map_cnt);

#endif /* RS_INSTRUMENT_H */
