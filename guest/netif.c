/*
 * netif.c: virtio-net with one receive and one transmit queue and no
 * offloads, so every frame arrives whole and checksummed by its sender.
 * Buffers are static; frames are handled in place in the receive buffer.
 * The transmit queue asks for no interrupts: its buffers are reclaimed when
 * we next need one.
 */
#include "apic.h"
#include "cpu.h"
#include "eth.h"
#include "netif.h"
#include "virtio.h"

#define F_MAC (1ULL << 5)
#define VIRTQ_DESC_F_WRITE 2
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define RXQ 0
#define TXQ 1
#define RX_BUFS 64
#define RX_BUFS_EARLY 16 /* posted before READY; the rest right after */
#define TX_BUFS 128      /* at most this many frames in flight, whatever the ring size */
#define BUF_SIZE 2048

struct netif {
	struct virtio_dev dev;
	struct virtq rx, tx;
	unsigned hdr_len;   /* 12 with VERSION_1, 10 for legacy */
	uint16_t rx_posted; /* rx buffers handed to the device so far */
	uint16_t tx_fresh;  /* tx descriptors never used yet: [tx_fresh, tx_max) */
	uint16_t tx_max;    /* MIN(tx.num, TX_BUFS) */
	uint16_t tx_free;   /* used-and-returned tx descriptors, kept on a stack */
	uint16_t tx_stack[TX_BUFS];
	uint16_t tx_cur; /* handed out by netif_tx_alloc, queued by netif_tx_send */
	bool rx_dirty, tx_dirty;
	volatile bool irq;
};

static struct netif nif;
static struct virtq_mem netif_rxq, netif_txq;
static uint8_t netif_rxbuf[RX_BUFS][BUF_SIZE] __attribute__((aligned(64)));
static uint8_t netif_txbuf[TX_BUFS][BUF_SIZE] __attribute__((aligned(64)));

__attribute__((interrupt)) static void netif_isr(struct cpu_frame *f)
{
	(void)f;
	/* Level-triggered: the line stays up until the status is acknowledged. */
	virtio_irq_ack(&nif.dev);
	nif.irq = true;
	apic_eoi();
}

static void netif_rx_give(uint16_t id)
{
	struct virtq *q = &nif.rx;

	q->avail->ring[q->avail->idx % q->num] = id;
	barrier();
	q->avail->idx++;
	nif.rx_dirty = true;
}

/*
 * Post receive buffers up to n.  Bring-up posts only a few: this loop runs
 * at about 2 us an iteration on the nested KVM here, so the rest wait until
 * READY is out (netif_rx_fill).
 */
static void netif_rx_post(uint16_t n)
{
	struct virtq *q = &nif.rx;
	uint16_t i;

	n = (uint16_t)MIN(n, q->num);
	for (i = nif.rx_posted; i < n; i++) {
		q->desc[i].addr = (uintptr_t)netif_rxbuf[i];
		q->desc[i].len = BUF_SIZE;
		q->desc[i].flags = VIRTQ_DESC_F_WRITE;
		q->avail->ring[q->avail->idx % q->num] = i;
		barrier();
		q->avail->idx++;
	}
	if (n > nif.rx_posted)
		nif.rx_dirty = true;
	nif.rx_posted = MAX(n, nif.rx_posted);
}

void netif_rx_fill(void)
{
	netif_rx_post(RX_BUFS);
}

int netif_init(const char *cmdline, uint8_t mac[6])
{
	uint32_t m0;
	uint16_t m1;

	if (!virtio_find(cmdline, VIRTIO_ID_NET, &nif.dev))
		return -1;
	if (virtio_begin(&nif.dev, F_MAC) < 0)
		return -1;
	nif.hdr_len = nif.dev.version == 2 ? 12 : 10;
	if (virtio_queue(&nif.dev, &nif.rx, RXQ, &netif_rxq) < 0 ||
	    virtio_queue(&nif.dev, &nif.tx, TXQ, &netif_txq) < 0)
		return -1;
	netif_rx_post(RX_BUFS_EARLY);
	nif.tx.avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	nif.tx_max = (uint16_t)MIN(nif.tx.num, TX_BUFS);
	/* Two reads rather than six byte reads: each is a VM exit. */
	m0 = virtio_config32(&nif.dev, 0);
	m1 = virtio_config16(&nif.dev, 4);
	memcpy(mac, &m0, 4);
	memcpy(mac + 4, &m1, 2);
	if (nif.dev.irq) {
		cpu_set_vector(VEC_NET, netif_isr);
		apic_route_gsi(nif.dev.irq, VEC_NET);
	}
	virtio_ready(&nif.dev);
	return 0;
}

/* Take back transmit buffers the device has finished with. */
static void netif_tx_reclaim(void)
{
	struct virtq *q = &nif.tx;

	while (q->last_used != q->used->idx) {
		barrier();
		nif.tx_stack[nif.tx_free++] = (uint16_t)q->used->ring[q->last_used % q->num].id;
		q->last_used++;
	}
}

uint8_t *netif_tx_alloc(void)
{
	uint16_t id;

	if (!nif.tx_free && nif.tx_fresh == nif.tx_max)
		netif_tx_reclaim();
	if (nif.tx_free)
		id = nif.tx_stack[--nif.tx_free];
	else if (nif.tx_fresh < nif.tx_max)
		id = nif.tx_fresh++;
	else
		return NULL;
	nif.tx_cur = id;
	return netif_txbuf[id] + nif.hdr_len;
}

void netif_tx_send(uint8_t *frame, size_t len)
{
	struct virtq *q = &nif.tx;
	uint16_t id = nif.tx_cur;
	uint8_t *buf = netif_txbuf[id];

	(void)frame; /* it is netif_txbuf[id] + hdr_len, handed out by netif_tx_alloc */
	memset(buf, 0, nif.hdr_len);
	q->desc[id].addr = (uintptr_t)buf;
	q->desc[id].len = (uint32_t)(nif.hdr_len + len);
	q->desc[id].flags = 0;
	q->avail->ring[q->avail->idx % q->num] = id;
	barrier();
	q->avail->idx++;
	nif.tx_dirty = true;
}

void netif_poll(void)
{
	struct virtq *q = &nif.rx;
	struct virtq_used_elem *e;
	uint8_t *buf;

	/* While we are busy the device need not interrupt us (netif_rx_arm undoes it). */
	q->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	while (q->last_used != q->used->idx) {
		barrier();
		e = &q->used->ring[q->last_used % q->num];
		q->last_used++;
		if (e->id >= RX_BUFS)
			continue;
		buf = netif_rxbuf[e->id];
		if (e->len > nif.hdr_len && e->len <= BUF_SIZE)
			eth_input(buf + nif.hdr_len, e->len - nif.hdr_len);
		netif_rx_give((uint16_t)e->id);
	}
}

void netif_flush(void)
{
	if (nif.tx_dirty) {
		nif.tx_dirty = false;
		virtio_kick(&nif.dev, &nif.tx);
	}
	if (nif.rx_dirty) {
		nif.rx_dirty = false;
		virtio_kick(&nif.dev, &nif.rx);
	}
}

bool netif_rx_arm(void)
{
	struct virtq *q = &nif.rx;

	q->avail->flags = 0;
	cpu_mb(); /* the flag must be visible before we look at the ring again */
	return q->last_used != q->used->idx;
}

bool netif_take_irq(void)
{
	bool f = nif.irq;

	nif.irq = false;
	return f;
}

bool netif_polled(void)
{
	return !nif.dev.irq;
}
