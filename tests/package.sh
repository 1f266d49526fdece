#!/usr/bin/env bash
# `make package`: the Debian package from debian/, built in a copy of the
# tree (dpkg-buildpackage writes beside the source and into debian/), its
# .deb in build/deb/. Needs debhelper (make deps).
set -eu
cd "$(dirname "$0")/.."
root=$PWD
command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null || {
	echo "make package: dpkg-buildpackage and debhelper are needed (make deps)" >&2
	exit 1
}
work=$(mktemp -d /tmp/beckon-pkg.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/beckon" build/deb
# The tracked files as they are now (with uncommitted changes), no build/.
git ls-files -z --cached --others --exclude-standard | grep -zv '^build/' |
	xargs -0 cp --parents -t "$work/beckon"
(cd "$work/beckon" && dpkg-buildpackage -us -uc -b -j"$(nproc)") >build/deb/build.log 2>&1 || {
	tail -30 build/deb/build.log >&2
	exit 1
}
rm -f build/deb/*.deb
cp "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo build/deb/
ls build/deb/*.deb
