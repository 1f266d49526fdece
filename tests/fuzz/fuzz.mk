# libFuzzer targets (owned by tests/fuzz/). Placeholder.
.PHONY: fuzz
fuzz:
