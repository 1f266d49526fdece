#!/usr/bin/env bash
# The style DESIGN.md asks for, where a tool can tell: every C file as
# .clang-format has it (`make format` fixes), and a man page beside each
# program and the config, which man renders without warnings.
. "$(dirname "$0")/lib.sh"
command -v clang-format >/dev/null || { skip "style: clang-format is not installed"; exit 0; }
cd "$ROOT"
files=$(git ls-files '*.c' '*.h' 2>/dev/null) || files=$(ls */*.c */*.h */*/*.c */*/*.h tests/*/*.c)
# One clang-format for all (one a file took minutes on a loaded machine); it names each file that differs.
bad=$(clang-format --dry-run --Werror $files 2>&1 | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: .*/\1/p' | sort -u)
check "every C file ($(echo "$files" | wc -w)) is clang-formatted${bad:+ (not: $(echo $bad))}" [ -z "$bad" ]
# docs/ARCHITECTURE.md: no two folders call each other.
if [ -d build/obj/launcher ]; then
	layers=$(python3 tests/tools/layers.py build/obj 2>&1)
	lrc=$?
	cycles=$(echo "$layers" | grep '^cycle' | tr '\n' ';')
	check "no two folders call each other${cycles:+ ($cycles)}" [ "$lrc" = 0 ]
	check "the launcher calls nothing in policy/ or proxy/" \
		bash -c "! echo '$layers' | grep -E '^launcher ->.*(policy|proxy)'"
else
	not_ok "no two folders call each other: build/obj is not built"
fi
for page in daemon/beckond.8 ctl/beckonctl.8 conf/beckon.conf.5; do
	check "man page $page renders without warnings" \
		bash -c "[ -f '$page' ] && [ -z \"\$(groff -man -ww -z '$page' 2>&1)\" ]"
done
finish
