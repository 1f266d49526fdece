# libFuzzer targets: every tests/fuzz/fuzz_*.c becomes build/fuzz/fuzz_*,
# linked against the library sources compiled again with clang and
# -fsanitize=fuzzer-no-link,address,undefined in build/fuzz/obj.
# `make fuzz` builds them; tests/integration/test_fuzz.sh runs each briefly;
# `make fuzz-long` runs each for hours by hand (tests/fuzz/long.sh:
# FUZZ_SECONDS per target, default 3600; FUZZ_TARGETS; FUZZ_JOBS) and
# merges inputs that reach new code into tests/fuzz/corpus/<target>/.
# (no -Werror here: clang warns about things gcc does not, and this build
# must not break on another module's clang-only warning).

FUZZ_CC     := clang
FUZZ_SAN    := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
	       -fno-sanitize-recover=undefined
FUZZ_CFLAGS  = -std=gnu11 -O1 -g -Wall -Wextra -D_GNU_SOURCE $(INCS) $(PKG_CFLAGS) -MMD -MP
FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS   := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))
fuzzobj      = $(patsubst %.c,build/fuzz/obj/%.o,$(1))

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -c -o $@ $<

build/fuzz/libbeckon.a: $(call fuzzobj,$(LIB_SRCS))
	@rm -f $@; ar rcs $@ $^

$(FUZZ_BINS): build/fuzz/%: build/fuzz/obj/tests/fuzz/%.o build/fuzz/libbeckon.a
	$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LIBS)

.PHONY: fuzz fuzz-long
fuzz: $(FUZZ_BINS)
fuzz-long: $(FUZZ_BINS)
	@tests/fuzz/long.sh
