/*
 * pci.c: PCI configuration mechanism #1 (ports 0xcf8/0xcfc), which QEMU's
 * pc (i440fx) and q35 both offer.  The firmware (SeaBIOS, before the PVH
 * option ROM or GRUB runs) has already assigned BARs and written each
 * function's Interrupt Line; we only read them.  Every access is two port
 * writes/reads, so the scan stops at the first match.
 */
#include "cpu.h"
#include "pci.h"

#define PCI_ADDR 0xcf8
#define PCI_DATA 0xcfc
#define PCI_HEADER_TYPE 0x0e
#define PCI_SECONDARY_BUS 0x19
#define PCI_STATUS_CAPS 0x0010
#define PCI_MAX_BUSES 16 /* buses we visit: bus 0 and what bridges lead to */

static void pci_select(pci_bdf f, unsigned off)
{
	outl(PCI_ADDR, 0x80000000u | (uint32_t)f << 8 | (off & 0xfc));
}

uint32_t pci_read32(pci_bdf f, unsigned off)
{
	pci_select(f, off);
	return inl(PCI_DATA);
}

uint16_t pci_read16(pci_bdf f, unsigned off)
{
	pci_select(f, off);
	return inw((uint16_t)(PCI_DATA + (off & 2)));
}

uint8_t pci_read8(pci_bdf f, unsigned off)
{
	pci_select(f, off);
	return inb((uint16_t)(PCI_DATA + (off & 3)));
}

void pci_write16(pci_bdf f, unsigned off, uint16_t v)
{
	pci_select(f, off);
	outw((uint16_t)(PCI_DATA + (off & 2)), v);
}

bool pci_find(uint16_t vendor, bool (*match)(uint16_t device, pci_bdf f), pci_bdf *out)
{
	uint8_t buses[PCI_MAX_BUSES] = {0};
	unsigned nbus = 1, b, dev, fn, nfn;
	uint32_t id;
	uint8_t hdr;
	pci_bdf f;

	for (b = 0; b < nbus; b++) {
		for (dev = 0; dev < 32; dev++) {
			nfn = 1;
			for (fn = 0; fn < nfn; fn++) {
				f = (pci_bdf)(buses[b] << 8 | dev << 3 | fn);
				id = pci_read32(f, PCI_VENDOR_ID);
				if ((id & 0xffff) == 0xffff)
					continue;
				hdr = pci_read8(f, PCI_HEADER_TYPE);
				if (fn == 0 && (hdr & 0x80))
					nfn = 8;
				if ((id & 0xffff) == vendor && match((uint16_t)(id >> 16), f)) {
					*out = f;
					return true;
				}
				/* A PCI-PCI (or PCIe root port) bridge: visit its bus too. */
				if ((hdr & 0x7f) == 1 && nbus < PCI_MAX_BUSES) {
					uint8_t sec = pci_read8(f, PCI_SECONDARY_BUS);
					if (sec)
						buses[nbus++] = sec;
				}
			}
		}
	}
	return false;
}

uintptr_t pci_bar(pci_bdf f, unsigned n, bool *io)
{
	uint32_t lo = pci_read32(f, PCI_BAR0 + 4 * n);

	*io = lo & 1;
	if (*io)
		return lo & ~3u;
	/* A 64-bit BAR the firmware put above 4 GiB: we map only the low 4 GiB. */
	if ((lo & 6) == 4 && n < 5 && pci_read32(f, PCI_BAR0 + 4 * (n + 1)))
		return 0;
	return lo & ~15u;
}

unsigned pci_next_cap(pci_bdf f, unsigned pos)
{
	if (!pos)
		return (pci_read16(f, PCI_STATUS) & PCI_STATUS_CAPS)
		           ? pci_read8(f, PCI_CAP_PTR) & 0xfc
		           : 0;
	return pci_read8(f, pos + 1) & 0xfc;
}
