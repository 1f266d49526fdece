/*
 * virtio_pci.c: virtio over PCI, as QEMU's pc and q35 machines give it.
 *
 * A transitional device (0x1af4:0x1000-0x103f, QEMU 7.2's default on pc and
 * on q35's root bus) has both interfaces, a modern-only one (0x1040 + id,
 * "disable-legacy=on", or behind a PCIe root port) only the modern one, a
 * legacy-only one ("disable-modern=on") only the I/O BAR.  We take the modern
 * interface when its capabilities are there (its ring size can be chosen),
 * else the legacy I/O ports.
 *
 * Interrupts are INTx: the firmware routed the pin and wrote the ISA IRQ it
 * chose (10 or 11 from SeaBIOS) into the Interrupt Line register, and on both
 * machines QEMU raises that IRQ on the IOAPIC pin of the same number,
 * level-triggered, as long as the device's ISR status is unread.  Reading
 * the ISR status (legacy: a port, modern: a byte in a memory BAR) lowers it.
 * MSI-X stays off, so the legacy device config starts at 0x14.
 */
#include "apic.h"
#include "console.h"
#include "pci.h"
#include "virtio.h"

#define VIRTIO_VENDOR 0x1af4

/* Legacy virtio-pci registers in the I/O BAR (BAR 0). */
#define L_DEV_FEATURES 0x00
#define L_DRV_FEATURES 0x04
#define L_QUEUE_PFN 0x08
#define L_QUEUE_NUM 0x0c
#define L_QUEUE_SEL 0x0e
#define L_QUEUE_NOTIFY 0x10
#define L_STATUS 0x12
#define L_ISR 0x13
#define L_CONFIG 0x14 /* with MSI-X off */

/* The modern common configuration structure. */
#define C_DEV_FEATURE_SEL 0x00
#define C_DEV_FEATURE 0x04
#define C_DRV_FEATURE_SEL 0x08
#define C_DRV_FEATURE 0x0c
#define C_STATUS 0x14
#define C_QUEUE_SEL 0x16
#define C_QUEUE_SIZE 0x18
#define C_QUEUE_ENABLE 0x1c
#define C_QUEUE_NOTIFY_OFF 0x1e
#define C_QUEUE_DESC 0x20
#define C_QUEUE_DRIVER 0x28
#define C_QUEUE_DEVICE 0x30

/* virtio vendor capability types. */
#define CAP_VENDOR 0x09
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR 3
#define CAP_DEVICE 4

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define F_VERSION_1 (1ULL << 32)

static uint32_t virtio_pci_want;

/* 0x1000 + n: transitional, its type in the subsystem id; 0x1040 + id: modern only. */
static bool virtio_pci_match(uint16_t device, pci_bdf f)
{
	if (device >= 0x1000 && device <= 0x103f)
		return pci_read16(f, PCI_SUBSYSTEM_ID) == virtio_pci_want;
	return device == 0x1040 + virtio_pci_want;
}

/* The modern interface: the four structures the vendor capabilities point at. */
static bool virtio_pci_modern(pci_bdf f, struct virtio_dev *dev)
{
	uintptr_t where[5] = {0};
	unsigned pos, type;
	uint32_t off;
	uintptr_t bar;
	bool io;

	for (pos = pci_next_cap(f, 0); pos; pos = pci_next_cap(f, pos)) {
		if (pci_read8(f, pos) != CAP_VENDOR)
			continue;
		type = pci_read8(f, pos + 3);
		if (type < CAP_COMMON || type > CAP_DEVICE || where[type])
			continue; /* the first of each kind is the one to use */
		bar = pci_bar(f, pci_read8(f, pos + 4), &io);
		if (!bar || io)
			continue;
		off = pci_read32(f, pos + 8);
		where[type] = bar + off;
		if (type == CAP_NOTIFY)
			dev->notify_mul = pci_read32(f, pos + 16);
	}
	if (!where[CAP_COMMON] || !where[CAP_NOTIFY] || !where[CAP_ISR] || !where[CAP_DEVICE])
		return false;
	dev->base = where[CAP_COMMON];
	dev->notify = where[CAP_NOTIFY];
	dev->isr = where[CAP_ISR];
	dev->devcfg = where[CAP_DEVICE];
	dev->transport = VIRTIO_PCI_MODERN;
	dev->version = 2;
	return true;
}

bool virtio_pci_find(uint32_t id, struct virtio_dev *dev)
{
	pci_bdf f;
	uint16_t cmd;
	uint8_t line;
	bool io;

	virtio_pci_want = id;
	if (!pci_find(VIRTIO_VENDOR, virtio_pci_match, &f))
		return false;
	apic_quiet_pic(); /* firmware ran before us: a PIT tick may be latched */
	/* I/O and memory decoding, bus mastering (the device DMAs the rings), INTx on. */
	cmd = pci_read16(f, PCI_COMMAND) | PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER;
	pci_write16(f, PCI_COMMAND, cmd & (uint16_t)~PCI_CMD_INTX_OFF);
	line = pci_read8(f, PCI_INTERRUPT_LINE);
	/* 0 and 0xff: no firmware routed the pin; we poll instead. */
	dev->irq = (line && line < 24) ? line : 0;
	if (!virtio_pci_modern(f, dev)) {
		dev->base = pci_bar(f, 0, &io);
		if (!dev->base || !io || dev->base > 0xffff)
			return false;
		dev->transport = VIRTIO_PCI_LEGACY;
		dev->version = 1;
	}
	console_printf("virtio-pci %x:%x.%x %s irq %u\n", f >> 8, (f >> 3) & 31, f & 7,
	               dev->transport == VIRTIO_PCI_MODERN ? "modern" : "legacy", dev->irq);
	return true;
}

static uint16_t lport(struct virtio_dev *d, unsigned r)
{
	return (uint16_t)(d->base + r);
}

static void virtio_pci_status(struct virtio_dev *d, uint8_t s)
{
	if (d->transport == VIRTIO_PCI_LEGACY)
		outb(lport(d, L_STATUS), s);
	else
		mmio_write8(d->base + C_STATUS, s);
}

static uint8_t virtio_pci_get_status(struct virtio_dev *d)
{
	if (d->transport == VIRTIO_PCI_LEGACY)
		return inb(lport(d, L_STATUS));
	return mmio_read8(d->base + C_STATUS);
}

int virtio_pci_begin(struct virtio_dev *d, uint64_t want)
{
	uint64_t have;

	virtio_pci_status(d, 0);
	/* A reset is done when the status reads 0 (QEMU: at once). */
	for (int spins = 1000000; virtio_pci_get_status(d) && --spins;)
		;
	virtio_pci_status(d, S_ACK | S_DRIVER);
	if (d->transport == VIRTIO_PCI_LEGACY) {
		have = inl(lport(d, L_DEV_FEATURES));
		outl(lport(d, L_DRV_FEATURES), (uint32_t)(want & have));
		return 0;
	}
	mmio_write32(d->base + C_DEV_FEATURE_SEL, 0);
	have = mmio_read32(d->base + C_DEV_FEATURE);
	mmio_write32(d->base + C_DEV_FEATURE_SEL, 1);
	have |= (uint64_t)mmio_read32(d->base + C_DEV_FEATURE) << 32;
	want |= F_VERSION_1;
	if (!(have & F_VERSION_1))
		return -1;
	want &= have;
	mmio_write32(d->base + C_DRV_FEATURE_SEL, 0);
	mmio_write32(d->base + C_DRV_FEATURE, (uint32_t)want);
	mmio_write32(d->base + C_DRV_FEATURE_SEL, 1);
	mmio_write32(d->base + C_DRV_FEATURE, (uint32_t)(want >> 32));
	virtio_pci_status(d, S_ACK | S_DRIVER | S_FEATURES_OK);
	return (virtio_pci_get_status(d) & S_FEATURES_OK) ? 0 : -1;
}

static void wr64(uintptr_t addr, const void *p)
{
	mmio_write32(addr, (uint32_t)(uintptr_t)p);
	mmio_write32(addr + 4, (uint32_t)((uintptr_t)p >> 32));
}

int virtio_pci_queue(struct virtio_dev *d, struct virtq *q, uint16_t index, struct virtq_mem *mem)
{
	uint16_t max;

	if (d->transport == VIRTIO_PCI_LEGACY) {
		/* The legacy ring size is the device's: 256 in QEMU. */
		outw(lport(d, L_QUEUE_SEL), index);
		max = inw(lport(d, L_QUEUE_NUM));
		if (!max || max > VIRTQ_MAX)
			return -1;
		virtq_layout(q, mem, max, index);
		outl(lport(d, L_QUEUE_PFN), (uint32_t)((uintptr_t)mem >> 12));
		return 0;
	}
	mmio_write16(d->base + C_QUEUE_SEL, index);
	max = mmio_read16(d->base + C_QUEUE_SIZE);
	if (!max)
		return -1;
	virtq_layout(q, mem, (uint16_t)MIN(max, VIRTQ_WANT), index);
	mmio_write16(d->base + C_QUEUE_SIZE, q->num);
	q->notify =
	    d->notify + (uintptr_t)mmio_read16(d->base + C_QUEUE_NOTIFY_OFF) * d->notify_mul;
	wr64(d->base + C_QUEUE_DESC, q->desc);
	wr64(d->base + C_QUEUE_DRIVER, q->avail);
	wr64(d->base + C_QUEUE_DEVICE, q->used);
	mmio_write16(d->base + C_QUEUE_ENABLE, 1);
	return 0;
}

void virtio_pci_ready(struct virtio_dev *d)
{
	uint8_t s = S_ACK | S_DRIVER | S_DRIVER_OK;

	virtio_pci_status(d, d->transport == VIRTIO_PCI_MODERN ? s | S_FEATURES_OK : s);
}

uint32_t virtio_pci_config32(struct virtio_dev *d, unsigned off)
{
	if (d->transport == VIRTIO_PCI_LEGACY)
		return inl(lport(d, L_CONFIG + off));
	return mmio_read32(d->devcfg + off);
}

uint16_t virtio_pci_config16(struct virtio_dev *d, unsigned off)
{
	if (d->transport == VIRTIO_PCI_LEGACY)
		return inw(lport(d, L_CONFIG + off));
	return mmio_read16(d->devcfg + off);
}

/* Reading the ISR status acknowledges it and lowers INTx. */
CPU_ISR_SAFE void virtio_pci_irq_ack(struct virtio_dev *d)
{
	if (d->transport == VIRTIO_PCI_LEGACY)
		(void)inb(lport(d, L_ISR));
	else
		(void)mmio_read8(d->isr);
}

void virtio_pci_notify(struct virtio_dev *d, struct virtq *q)
{
	if (d->transport == VIRTIO_PCI_LEGACY)
		outw(lport(d, L_QUEUE_NOTIFY), q->index);
	else
		mmio_write16(q->notify, q->index);
}
