// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0)
/*
 * lift_tc.bpf.c - TC (sched_cls) test programs for the lifter: the common __sk_buff fields as
 * loads (full and narrow), the writable ones as stores, direct packet writes (the verifier's
 * unclone prologue), skb helpers and a map lookup.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 8);
} marks SEC(".maps");

SEC("tc")
int lift_tc_fields(struct __sk_buff *skb)
{
	__u32 acc = 0, *m;

	acc += skb->len;
	acc += skb->pkt_type;
	acc += skb->mark;
	acc += skb->queue_mapping;
	acc += skb->protocol;
	acc += skb->vlan_present;
	acc += skb->vlan_tci;
	acc += skb->vlan_proto;
	acc += skb->priority;
	acc += skb->ingress_ifindex;
	acc += skb->ifindex;
	acc += skb->tc_index;
	acc += skb->cb[0] + skb->cb[4];
	acc += skb->hash;
	acc += skb->tc_classid;
	acc += skb->napi_id;
	acc += skb->wire_len;
	acc += skb->gso_segs;
	acc += skb->gso_size;
	acc += (__u32)skb->tstamp;
	acc += *(volatile __u8 *)&skb->mark;
	acc += *(volatile __u16 *)((char *)&skb->hash + 2);
	m = bpf_map_lookup_elem(&marks, &acc);
	skb->mark = m ? *m : acc;
	skb->priority = acc & 7;
	skb->tc_index = acc & 0xff;
	skb->cb[1] = acc;
	skb->tc_classid = 1;
	skb->queue_mapping = 0;
	skb->tstamp = 0;
	return acc & 1 ? TC_ACT_OK : TC_ACT_SHOT;
}

SEC("tc")
int lift_tc_write(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 buf[8] = {};

	if (data + 14 > data_end)
		return TC_ACT_OK;
	((__u8 *)data)[12] ^= 0xff;
	bpf_skb_load_bytes(skb, 0, buf, sizeof(buf));
	bpf_skb_store_bytes(skb, 0, buf, sizeof(buf), 0);
	bpf_l3_csum_replace(skb, 24, 0, 0, 0);
	bpf_l4_csum_replace(skb, 40, 0, 0, 0);
	bpf_skb_change_tail(skb, skb->len, 0);
	bpf_skb_pull_data(skb, 0);
	bpf_set_hash(skb, bpf_get_hash_recalc(skb));
	if (bpf_skb_vlan_push(skb, 0x8100, 1) == 0)
		bpf_skb_vlan_pop(skb);
	return bpf_redirect(skb->ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
