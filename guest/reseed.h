/*
 * reseed.h: a restored guest is not a clone.  beckon restores many guests
 * from one snapshot (a template); right after each restore it writes one
 * line to the console's input (COM1):
 *
 *     RESEED <32 hex digits of fresh entropy> <unix time in ms>\n
 *
 * The guest mixes the entropy into its TCP ISN secret and takes a new boot
 * id from it, sets its wall clock, and says "RESEEDED <boot id>".  Into a
 * pool VMM, beckon writes the same words into the guest's reseed page
 * instead (guest/README.md), before the guest runs, and sends no line.
 */
#ifndef GUEST_RESEED_H
#define GUEST_RESEED_H

#include "lib.h"

/* Take COM1's input by interrupt; a boot id from the TSC. */
void reseed_init(void);
/* A line came in (set by the interrupt): the main loop calls reseed_poll. */
bool reseed_pending(void);
/* Apply a complete RESEED line, if one came in, and new words in the reseed page. */
void reseed_poll(void);
/* This run's boot id (new after each reseed), restores seen, wall clock (ms; 0 unknown). */
uint64_t reseed_boot_id(void);
uint32_t reseed_count(void);
uint64_t reseed_wall_ms(void);
/* Entropy for the TCP ISN secret: nonzero, changed by each reseed. */
uint64_t reseed_secret(void);

#endif
