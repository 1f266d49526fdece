/* console.h: output on the COM1 serial port, kept small (each outb is a VM exit). */
#ifndef GUEST_CONSOLE_H
#define GUEST_CONSOLE_H

#include "lib.h"

/* Print a formatted line: %s, %c, %u, %x, %d (32-bit); %lu, %lx (64-bit). */
void console_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
