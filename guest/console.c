/*
 * console.c: polled 16550 output on COM1.  We skip line setup: QEMU's and
 * Firecracker's UARTs transmit whatever the divisor, and every port write
 * costs a VM exit (tens of microseconds under the nested KVM here).
 */
#include <stdarg.h>

#include "console.h"
#include "cpu.h"

#define COM1 0x3f8
#define COM_LSR 5
#define LSR_THRE 0x20

static void console_putc(char c)
{
	int spins = 100000;

	/* Bounded wait: a missing UART reads 0xff and must not hang us. */
	while (!(inb(COM1 + COM_LSR) & LSR_THRE) && --spins)
		;
	outb(COM1, (uint8_t)c);
}

static void console_puts(const char *s)
{
	while (*s)
		console_putc(*s++);
}

static void console_put_num(uint64_t v, unsigned base, bool neg)
{
	char buf[24];
	int n = 0;

	if (neg)
		console_putc('-');
	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n)
		console_putc(buf[--n]);
}

static const char *console_conv(const char *f, va_list *ap)
{
	bool lng = false;
	int64_t s;

	if (*f == 'l') {
		lng = true;
		f++;
	}
	switch (*f) {
	case 's':
		console_puts(va_arg(*ap, const char *));
		break;
	case 'c':
		console_putc((char)va_arg(*ap, int));
		break;
	case 'u':
		console_put_num(lng ? va_arg(*ap, uint64_t) : va_arg(*ap, unsigned), 10, false);
		break;
	case 'x':
		console_put_num(lng ? va_arg(*ap, uint64_t) : va_arg(*ap, unsigned), 16, false);
		break;
	case 'd':
		s = lng ? va_arg(*ap, int64_t) : va_arg(*ap, int);
		console_put_num(s < 0 ? (uint64_t)-s : (uint64_t)s, 10, s < 0);
		break;
	default:
		console_putc(*f);
		break;
	}
	return f;
}

void console_printf(const char *fmt, ...)
{
	va_list ap;
	const char *f;

	va_start(ap, fmt);
	for (f = fmt; *f; f++) {
		if (*f != '%') {
			console_putc(*f);
			continue;
		}
		if (!*++f)
			break;
		f = console_conv(f, &ap);
	}
	va_end(ap);
}
