// SPDX-License-Identifier: BSD-2-Clause
/*
 * replay_trace.c - reading packet traces for replay: a pcap / pcapng file with Ethernet
 * frames, read whole into memory through libpcap.  Errors name the file and the packet.
 */
#include <errno.h>
#define PCAP_DONT_INCLUDE_PCAP_BPF_H	/* its struct bpf_insn clashes with linux/bpf.h */
#include <pcap/pcap.h>
#include <pcap/dlt.h>
#include <stdlib.h>
#include <string.h>

#include "instrument/instrument.h"

void rs_trace_free(struct rs_trace *tr)
{
	size_t i;

	if (!tr)
		return;
	for (i = 0; i < tr->cnt; i++)
		free(tr->pkts[i].data);
	free(tr->pkts);
	tr->pkts = NULL;
	tr->cnt = 0;
	tr->max_len = 0;
}

static int trace_add(struct rs_trace *tr, size_t *cap, const uint8_t *data, uint32_t len)
{
	struct rs_packet *p;

	if (tr->cnt == *cap) {
		size_t ncap = *cap ? *cap * 2 : 1024;

		p = realloc(tr->pkts, ncap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		tr->pkts = p;
		*cap = ncap;
	}
	p = &tr->pkts[tr->cnt];
	p->data = malloc(len ? len : 1);
	if (!p->data)
		return -ENOMEM;
	memcpy(p->data, data, len);
	p->len = len;
	tr->cnt++;
	if (len > tr->max_len)
		tr->max_len = len;
	return 0;
}

int rs_trace_load_pcap(const char *path, struct rs_trace *tr)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	struct pcap_pkthdr *hdr;
	const u_char *data;
	size_t cap = 0;
	pcap_t *pc;
	int ret, dlt;

	memset(tr, 0, sizeof(*tr));
	snprintf(tr->path, sizeof(tr->path), "%s", path);
	pc = pcap_open_offline(path, errbuf);
	if (!pc) {
		rs_warn("%s: not a readable pcap file: %s", path, errbuf);
		return -RS_ERR_FORMAT;
	}
	dlt = pcap_datalink(pc);
	if (dlt != DLT_EN10MB) {
		rs_warn("%s: link type %s (%d) is not Ethernet", path,
			pcap_datalink_val_to_name(dlt) ?: "?", dlt);
		ret = -RS_ERR_FORMAT;
		goto err;
	}
	for (;;) {
		ret = pcap_next_ex(pc, &hdr, &data);
		if (ret == PCAP_ERROR_BREAK)
			break;
		if (ret != 1) {
			rs_warn("%s: packet %zu: %s", path, tr->cnt + 1, pcap_geterr(pc));
			ret = -RS_ERR_FORMAT;
			goto err;
		}
		if (hdr->caplen < 14) {
			rs_warn("%s: packet %zu: %u bytes, shorter than an Ethernet header",
				path, tr->cnt + 1, hdr->caplen);
			ret = -RS_ERR_FORMAT;
			goto err;
		}
		if (hdr->caplen < hdr->len)
			rs_debug("%s: packet %zu: captured %u of %u bytes, replaying %u",
				 path, tr->cnt + 1, hdr->caplen, hdr->len, hdr->caplen);
		ret = trace_add(tr, &cap, data, hdr->caplen);
		if (ret)
			goto err;
	}
	pcap_close(pc);
	if (!tr->cnt) {
		rs_warn("%s: no packets", path);
		return -RS_ERR_FORMAT;
	}
	return 0;
err:
	pcap_close(pc);
	rs_trace_free(tr);
	return ret;
}
