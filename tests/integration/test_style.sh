#!/usr/bin/env bash
# The style DESIGN.md asks for, where a tool can tell: every C file as
# .clang-format has it (`make format` fixes), and a man page beside each
# program and the config, which man renders without warnings.
. "$(dirname "$0")/lib.sh"
command -v clang-format >/dev/null || { skip "style: clang-format is not installed"; exit 0; }
cd "$ROOT"
files=$(git ls-files '*.c' '*.h' 2>/dev/null) || files=$(ls */*.c */*.h tests/*/*.c)
bad=$(for f in $files; do clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || echo "$f"; done)
check "every C file ($(echo "$files" | wc -w)) is clang-formatted${bad:+ (not: $(echo $bad))}" [ -z "$bad" ]
for page in daemon/beckond.8 ctl/beckonctl.8 conf/beckon.conf.5; do
	check "man page $page renders without warnings" \
		bash -c "[ -f '$page' ] && [ -z \"\$(groff -man -ww -z '$page' 2>&1)\" ]"
done
finish
