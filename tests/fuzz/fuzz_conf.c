/*
 * libFuzzer target for the config parser: the input is written to a file and
 * loaded with conf_load, errors to /dev/null, then freed. Crashes, leaks and
 * undefined behaviour are what it looks for.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[] = "/tmp/fuzz_conf.XXXXXX";
static FILE *devnull;

static void cleanup(void)
{
	unlink(path);
}

static int setup(void)
{
	int fd;

	if (devnull != NULL)
		return 0;
	if ((fd = mkstemp(path)) == -1)
		return -1;
	close(fd);
	atexit(cleanup);
	devnull = fopen("/dev/null", "w");
	return devnull == NULL ? -1 : 0;
}

/*
 * @include could name /dev/zero or a FIFO and hang the run; the include
 * path is covered by the unit and integration tests instead.
 */
static bool has_include(const uint8_t *data, size_t size)
{
	static const char word[] = "include";

	for (size_t i = 0; i + sizeof(word) - 1 <= size; i++)
		if (strncasecmp((const char *)data + i, word, sizeof(word) - 1) == 0)
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf *conf = NULL;
	FILE *f;

	if (setup() == -1) {
		perror("fuzz_conf: setup");
		abort();
	}
	if (has_include(data, size))
		return 0;
	if ((f = fopen(path, "w")) == NULL) {
		perror("fuzz_conf: fopen");
		abort();
	}
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	if (conf_load(path, &conf, devnull) == 0) {
		if (conf == NULL)
			abort();
		conf_free(conf);
	} else if (conf != NULL) {
		abort(); /* a failed load leaves nothing behind */
	}
	return 0;
}
