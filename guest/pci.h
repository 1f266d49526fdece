/* pci.h: PCI configuration space through ports 0xcf8/0xcfc (QEMU pc and q35). */
#ifndef GUEST_PCI_H
#define GUEST_PCI_H

#include "lib.h"

#define PCI_VENDOR_ID 0x00
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAP_PTR 0x34
#define PCI_INTERRUPT_LINE 0x3c

#define PCI_CMD_IO 0x0001
#define PCI_CMD_MEM 0x0002
#define PCI_CMD_MASTER 0x0004
#define PCI_CMD_INTX_OFF 0x0400

/* A function's address: bus << 8 | device << 3 | function. */
typedef uint16_t pci_bdf;

uint32_t pci_read32(pci_bdf f, unsigned off);
uint16_t pci_read16(pci_bdf f, unsigned off);
uint8_t pci_read8(pci_bdf f, unsigned off);
void pci_write16(pci_bdf f, unsigned off, uint16_t v);
/*
 * Walk bus 0 and the buses behind bridges for a function whose vendor is
 * vendor and for which match(device id, f) says yes.  True and *out if found.
 */
bool pci_find(uint16_t vendor, bool (*match)(uint16_t device, pci_bdf f), pci_bdf *out);
/* BAR n's address: an I/O port base or a memory address; 0 when unset or above 4 GiB. */
uintptr_t pci_bar(pci_bdf f, unsigned n, bool *io);
/* The capability after the one at pos (pos 0: the first); its config offset, 0 at the end. */
unsigned pci_next_cap(pci_bdf f, unsigned pos);

#endif
