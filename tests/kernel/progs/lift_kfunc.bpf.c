// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0)
/*
 * lift_kfunc.bpf.c - a program the lifter must refuse: it calls a kfunc, whose translated
 * call cannot be turned back into a BTF id reference.  The test expects -RS_ERR_UNLIFTABLE
 * naming the instruction.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;

SEC("xdp")
int lift_kfunc(struct xdp_md *ctx)
{
	bpf_rcu_read_lock();
	bpf_rcu_read_unlock();
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
