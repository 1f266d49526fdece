/* lib.c: byte-at-a-time string and memory helpers; the guest moves little data. */
#include "lib.h"

/*
 * rep movsq then rep movsb: the emulating KVM here takes about a microsecond
 * per instruction and per string-instruction step, so eight bytes a step
 * beat one byte a step (or a loop) by a wide margin; real CPUs don't mind.
 */
void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;
	size_t q = n / 8, r = n % 8;

	__asm__ volatile("rep movsq" : "+D"(d), "+S"(src), "+c"(q) : : "memory");
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(r) : : "memory");
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;

	if (d <= s || d >= s + n)
		return memcpy(dst, src, n);
	while (n--)
		d[n] = s[n];
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;
	size_t q = n / 8, r = n % 8;
	uint64_t v = (uint8_t)c * 0x0101010101010101ULL;

	__asm__ volatile("rep stosq" : "+D"(d), "+c"(q) : "a"(v) : "memory");
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(r) : "a"(v) : "memory");
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

/* repne scasb, for the same reason as rep movsb above. */
void *memchr(const void *s, int c, size_t n)
{
	const uint8_t *p = s;
	bool found;

	if (!n)
		return NULL;
	__asm__ volatile("repne scasb; sete %2" : "+D"(p), "+c"(n), "=r"(found) : "a"(c) : "cc");
	return found ? (void *)(p - 1) : NULL;
}

size_t strlen(const char *s)
{
	return (size_t)((const char *)memchr(s, 0, SIZE_MAX) - s);
}

static char lib_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

bool lib_strncaseeq(const char *p, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] == '\0' || lib_lower(p[i]) != lib_lower(s[i]))
			return false;
	return s[n] == '\0';
}

size_t lib_utoa(char *buf, uint64_t v)
{
	char tmp[20], *p = tmp + sizeof(tmp);
	size_t n;

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	n = (size_t)(tmp + sizeof(tmp) - p);
	memcpy(buf, p, n);
	return n;
}

int64_t lib_atou(const char **p, const char *end)
{
	const char *s = *p;
	int64_t v = 0;

	if (s >= end || *s < '0' || *s > '9')
		return -1;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	*p = s;
	return v;
}
