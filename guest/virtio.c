/*
 * virtio.c: the virtio-mmio transport, and the entry points that hand PCI
 * devices to virtio_pci.c.  microvm puts its transports at
 * 0xfeb00000 + n * 0x200 and appends "virtio_mmio.device=512@ADDR:IRQ" for
 * the used ones to the command line only sometimes, so we read that when it
 * is there (Firecracker always passes it) and probe the slots otherwise.
 * Without either, the device is looked for on PCI (QEMU pc and q35).
 */
#include "cpu.h"
#include "apic.h"
#include "virtio.h"

#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEV_FEATURES 0x010
#define R_DEV_FEATURES_SEL 0x014
#define R_DRV_FEATURES 0x020
#define R_DRV_FEATURES_SEL 0x024
#define R_GUEST_PAGE_SIZE 0x028 /* legacy */
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_ALIGN 0x03c /* legacy */
#define R_QUEUE_PFN 0x040   /* legacy */
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_IRQ_STATUS 0x060
#define R_IRQ_ACK 0x064
#define R_STATUS 0x070
#define R_QUEUE_DESC 0x080
#define R_QUEUE_AVAIL 0x090
#define R_QUEUE_USED 0x0a0
#define R_CONFIG 0x100

#define MAGIC 0x74726976 /* "virt" */
#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define F_VERSION_1 (1ULL << 32)
#define VRING_USED_F_NO_NOTIFY 1

#define MICROVM_BASE 0xfeb00000UL
#define MICROVM_SLOTS 24

static uint32_t rd(struct virtio_dev *d, unsigned r)
{
	return mmio_read32(d->base + r);
}

static void wr(struct virtio_dev *d, unsigned r, uint32_t v)
{
	mmio_write32(d->base + r, v);
}

static bool virtio_is(uintptr_t base, uint32_t id)
{
	return mmio_read32(base + R_MAGIC) == MAGIC && mmio_read32(base + R_DEVICE_ID) == id;
}

/* Parse one "virtio_mmio.device=<size>@<addr>:<irq>" value at p. */
static bool virtio_parse_arg(const char *p, uintptr_t *base, unsigned *irq)
{
	uint64_t v = 0;

	while (*p && *p != '@')
		p++;
	if (*p++ != '@' || p[0] != '0' || (p[1] | 0x20) != 'x')
		return false;
	for (p += 2; *p && *p != ':'; p++) {
		char c = (char)(*p | 0x20);
		if (c >= '0' && c <= '9')
			v = v * 16 + (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (uint64_t)(c - 'a' + 10);
		else
			return false;
	}
	if (*p++ != ':' || v >= 0x100000000ULL || (v & 0xfff) % 0x200)
		return false;
	*base = (uintptr_t)v;
	*irq = 0;
	for (; *p >= '0' && *p <= '9'; p++)
		*irq = *irq * 10 + (unsigned)(*p - '0');
	return *irq > 0 && *irq < 48;
}

static bool virtio_find_cmdline(const char *cl, uint32_t id, struct virtio_dev *dev)
{
	static const char key[] = "virtio_mmio.device=";
	const char *p;

	for (p = cl; p && *p; p++) {
		if ((p != cl && p[-1] != ' ') || memcmp(p, key, sizeof(key) - 1))
			continue;
		if (virtio_parse_arg(p + sizeof(key) - 1, &dev->base, &dev->irq) &&
		    virtio_is(dev->base, id))
			return true;
	}
	return false;
}

/*
 * The order to probe microvm's slots in: QEMU fills them from the top, which
 * is slot 23 with ACPI (24 transports) and slot 7 without (8), so those two
 * first, then the rest downwards.  Each probe of a missing slot is a VM exit.
 */
static unsigned virtio_slot_order(unsigned i)
{
	if (i == 0)
		return 23;
	if (i == 1)
		return 7;
	return i <= 16 ? 24 - i : 23 - i;
}

bool virtio_find(const char *cmdline, uint32_t id, struct virtio_dev *dev)
{
	unsigned i, n, irq_base;

	if (virtio_find_cmdline(cmdline, id, dev))
		goto found;
	/*
	 * microvm: GSI 5 + n without ACPI, 24 + n on the second IOAPIC with it.
	 * QEMU fills the slots from the top, so search downwards: every probe
	 * of an empty slot is two VM exits.
	 */
	for (i = 0; i < MICROVM_SLOTS; i++) {
		n = virtio_slot_order(i);
		dev->base = MICROVM_BASE + n * 0x200;
		if (virtio_is(dev->base, id)) {
			/* Only the second IOAPIC's layout has slots past 8. */
			irq_base = (n >= 8 || apic_has_ioapic2()) ? 24 : 5;
			dev->irq = irq_base + n;
			goto found;
		}
	}
	return virtio_pci_find(id, dev);
found:
	dev->transport = VIRTIO_MMIO;
	dev->version = rd(dev, R_VERSION);
	return dev->version == 1 || dev->version == 2;
}

int virtio_begin(struct virtio_dev *dev, uint64_t want)
{
	uint64_t have;

	if (dev->transport != VIRTIO_MMIO)
		return virtio_pci_begin(dev, want);
	wr(dev, R_STATUS, 0);
	wr(dev, R_STATUS, S_ACK | S_DRIVER);
	wr(dev, R_DEV_FEATURES_SEL, 0);
	have = rd(dev, R_DEV_FEATURES);
	if (dev->version == 2) {
		wr(dev, R_DEV_FEATURES_SEL, 1);
		have |= (uint64_t)rd(dev, R_DEV_FEATURES) << 32;
		want |= F_VERSION_1;
		if (!(have & F_VERSION_1))
			return -1;
	}
	want &= have;
	wr(dev, R_DRV_FEATURES_SEL, 0);
	wr(dev, R_DRV_FEATURES, (uint32_t)want);
	if (dev->version == 1) {
		wr(dev, R_GUEST_PAGE_SIZE, 4096);
		return 0;
	}
	wr(dev, R_DRV_FEATURES_SEL, 1);
	wr(dev, R_DRV_FEATURES, (uint32_t)(want >> 32));
	wr(dev, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	return (rd(dev, R_STATUS) & S_FEATURES_OK) ? 0 : -1;
}

static void virtio_wr64(struct virtio_dev *dev, unsigned r, const void *p)
{
	wr(dev, r, (uint32_t)(uintptr_t)p);
	wr(dev, r + 4, (uint32_t)((uintptr_t)p >> 32));
}

int virtio_queue(struct virtio_dev *dev, struct virtq *q, uint16_t index, struct virtq_mem *mem)
{
	uint32_t max;

	if (dev->transport != VIRTIO_MMIO)
		return virtio_pci_queue(dev, q, index, mem);
	wr(dev, R_QUEUE_SEL, index);
	max = rd(dev, R_QUEUE_NUM_MAX);
	if (max == 0)
		return -1;
	virtq_layout(q, mem, (uint16_t)MIN(max, VIRTQ_WANT), index);
	wr(dev, R_QUEUE_NUM, q->num);
	if (dev->version == 1) {
		wr(dev, R_QUEUE_ALIGN, 4096);
		wr(dev, R_QUEUE_PFN, (uint32_t)((uintptr_t)mem >> 12));
		return 0;
	}
	virtio_wr64(dev, R_QUEUE_DESC, q->desc);
	virtio_wr64(dev, R_QUEUE_AVAIL, q->avail);
	virtio_wr64(dev, R_QUEUE_USED, q->used);
	wr(dev, R_QUEUE_READY, 1);
	return 0;
}

void virtio_ready(struct virtio_dev *dev)
{
	uint32_t s = S_ACK | S_DRIVER | S_DRIVER_OK;

	if (dev->transport != VIRTIO_MMIO) {
		virtio_pci_ready(dev);
		return;
	}
	wr(dev, R_STATUS, dev->version == 2 ? s | S_FEATURES_OK : s);
}

uint32_t virtio_config32(struct virtio_dev *dev, unsigned off)
{
	if (dev->transport != VIRTIO_MMIO)
		return virtio_pci_config32(dev, off);
	return rd(dev, R_CONFIG + off);
}

uint16_t virtio_config16(struct virtio_dev *dev, unsigned off)
{
	if (dev->transport != VIRTIO_MMIO)
		return virtio_pci_config16(dev, off);
	return *(volatile uint16_t *)(dev->base + R_CONFIG + off);
}

/* Acknowledge both causes (used buffers, config change) blind: one VM exit, not two. */
CPU_ISR_SAFE void virtio_irq_ack(struct virtio_dev *dev)
{
	if (dev->transport != VIRTIO_MMIO) {
		virtio_pci_irq_ack(dev);
		return;
	}
	wr(dev, R_IRQ_ACK, 3);
}

void virtio_kick(struct virtio_dev *dev, struct virtq *q)
{
	cpu_mb(); /* the avail index must be visible before we read the used flags */
	if (q->used->flags & VRING_USED_F_NO_NOTIFY)
		return;
	if (dev->transport == VIRTIO_MMIO)
		wr(dev, R_QUEUE_NOTIFY, q->index);
	else
		virtio_pci_notify(dev, q);
}

void virtq_layout(struct virtq *q, struct virtq_mem *mem, uint16_t num, uint16_t index)
{
	uintptr_t used =
	    sizeof(struct virtq_desc) * num + sizeof(struct virtq_avail) + 2u * num + 2;

	q->desc = (struct virtq_desc *)mem->bytes;
	q->avail = (struct virtq_avail *)(mem->bytes + sizeof(struct virtq_desc) * num);
	q->used = (struct virtq_used *)(mem->bytes + ((used + 4095) & ~(uintptr_t)4095));
	q->num = num;
	q->last_used = 0;
	q->index = index;
}
