/*
 * virtio.h: virtio devices over three transports (virtio-mmio, legacy
 * virtio-pci through I/O ports, modern virtio-pci through memory BARs) and
 * split virtqueues.
 */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include "cpu.h"

#define VIRTIO_ID_NET 1
/* The largest ring we accept: legacy virtio-pci cannot shrink QEMU's 256. */
#define VIRTQ_MAX 256
/* The ring size we ask for where the driver may choose (virtio-mmio, modern virtio-pci). */
#define VIRTQ_WANT 128

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[];
};

/*
 * Memory for one queue of up to VIRTQ_MAX entries, in the legacy layout
 * (descriptors, avail, then used on the next 4 KiB boundary), which the
 * modern transports accept as well.
 */
struct virtq_mem {
	uint8_t bytes[3 * 4096];
} __attribute__((aligned(4096)));

struct virtq {
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	uintptr_t notify;   /* modern virtio-pci: where to write the queue number */
	uint16_t num;       /* ring size */
	uint16_t last_used; /* next used entry to look at */
	uint16_t index;     /* queue number on the device */
};

enum virtio_transport {
	VIRTIO_MMIO,
	VIRTIO_PCI_LEGACY, /* virtio 0.9.5 through an I/O BAR (transitional devices) */
	VIRTIO_PCI_MODERN, /* virtio 1.0 through memory BARs found by vendor capabilities */
};

struct virtio_dev {
	uintptr_t base;   /* mmio registers, legacy I/O port base, or modern common config */
	unsigned irq;     /* the GSI of its interrupt; 0 when it has none (polled) */
	uint32_t version; /* 1 legacy, 2 modern */
	enum virtio_transport transport;
	/* modern virtio-pci only: */
	uintptr_t isr, devcfg, notify;
	uint32_t notify_mul;
};

/*
 * Find a device of this id: "virtio_mmio.device=" on the command line, else
 * microvm's slots, else PCI.
 */
bool virtio_find(const char *cmdline, uint32_t id, struct virtio_dev *dev);
/* Reset, acknowledge, negotiate: we take want & offered (VERSION_1 always on modern). */
int virtio_begin(struct virtio_dev *dev, uint64_t want);
/* Set queue q up in mem (VIRTQ_WANT entries where we may choose, at most VIRTQ_MAX). */
int virtio_queue(struct virtio_dev *dev, struct virtq *q, uint16_t index, struct virtq_mem *mem);
/* DRIVER_OK: the device may start. */
void virtio_ready(struct virtio_dev *dev);
/* Four bytes of the device config space at off, in memory order. */
uint32_t virtio_config32(struct virtio_dev *dev, unsigned off);
/* Two bytes of the device config space at off, in memory order. */
uint16_t virtio_config16(struct virtio_dev *dev, unsigned off);
/* Acknowledge the interrupt. */
CPU_ISR_SAFE void virtio_irq_ack(struct virtio_dev *dev);
/* Tell the device about new buffers, unless it said it needs no notice. */
void virtio_kick(struct virtio_dev *dev, struct virtq *q);

/* virtio_pci.c, behind the functions above. */
bool virtio_pci_find(uint32_t id, struct virtio_dev *dev);
int virtio_pci_begin(struct virtio_dev *dev, uint64_t want);
int virtio_pci_queue(struct virtio_dev *dev, struct virtq *q, uint16_t index,
                     struct virtq_mem *mem);
void virtio_pci_ready(struct virtio_dev *dev);
uint32_t virtio_pci_config32(struct virtio_dev *dev, unsigned off);
uint16_t virtio_pci_config16(struct virtio_dev *dev, unsigned off);
CPU_ISR_SAFE void virtio_pci_irq_ack(struct virtio_dev *dev);
void virtio_pci_notify(struct virtio_dev *dev, struct virtq *q);
/* Point q's desc, avail and used into mem for a ring of num entries (the legacy layout). */
void virtq_layout(struct virtq *q, struct virtq_mem *mem, uint16_t num, uint16_t index);

#endif
