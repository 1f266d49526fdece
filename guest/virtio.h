/* virtio.h: the virtio-mmio transport (modern and legacy) and split virtqueues. */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include "cpu.h"

#define VIRTIO_ID_NET 1
#define VIRTQ_MAX 128

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[VIRTQ_MAX];
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[VIRTQ_MAX];
};

/*
 * One queue in the legacy layout (descriptors, avail, then used on the next
 * page), which a modern device accepts as well.
 */
struct virtq_mem {
	struct virtq_desc desc[VIRTQ_MAX];
	struct virtq_avail avail;
	uint8_t pad[4096 - sizeof(struct virtq_desc) * VIRTQ_MAX - sizeof(struct virtq_avail)];
	struct virtq_used used;
} __attribute__((aligned(4096)));

struct virtq {
	struct virtq_mem *mem;
	uint16_t num;       /* ring size */
	uint16_t last_used; /* next used entry to look at */
	uint16_t index;     /* queue number on the device */
};

struct virtio_dev {
	uintptr_t base;
	unsigned irq;
	uint32_t version; /* 1 legacy, 2 modern */
};

/* Find a device of this id: "virtio_mmio.device=" on the command line, else microvm's slots. */
bool virtio_find(const char *cmdline, uint32_t id, struct virtio_dev *dev);
/* Reset, acknowledge, negotiate: we take want & offered (VERSION_1 always on modern). */
int virtio_begin(struct virtio_dev *dev, uint64_t want);
/* Set queue q up in mem with at most VIRTQ_MAX entries. */
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

#endif
