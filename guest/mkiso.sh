#!/bin/sh
# mkiso.sh OUT ELF [WORDS]: a BIOS-bootable GRUB image (an ISO 9660 that also
# boots as a hard disk) whose grub.cfg boots ELF at once through multiboot2
# with WORDS as its command line, followed by any words QEMU passes in an
# SMBIOS OEM string (below).  Built by "make guest-iso"; a test that
# wants another command line makes its own image (GUEST_ISO=... and
# GUEST_ISO_CMDLINE=... on make's command line).
set -eu
out=$1
elf=$2
words=${3:-}
# grub.cfg is a script: keep $, quotes, ; and the like out of it.
case $words in
*[!A-Za-z0-9=./:,_@+\ -]*)
	echo "mkiso.sh: the command line may hold only letters, digits, spaces and =./:,_@+-" >&2
	exit 1
	;;
esac
if ! command -v grub-mkrescue >/dev/null || [ ! -d /usr/lib/grub/i386-pc ]; then
	echo "mkiso.sh: needs grub-mkrescue with the BIOS modules (apt-get install grub-common grub-pc-bin xorriso mtools)" >&2
	exit 1
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/hello-iso.XXXXXX")
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/root/boot/grub"
cp "$elf" "$dir/root/boot/hello.elf"
# More words can come from QEMU without remaking the image, as the last SMBIOS
# OEM string: -smbios type=11,value=hello.cmdline=WORDS (GRUB's smbios reads
# the string numbered by the byte at offset 4, the count).  They follow the
# image's words, so they win.
cat >"$dir/root/boot/grub/grub.cfg" <<CFG
set timeout=0
set default=0
menuentry hello {
	extra=
	if smbios --type 11 --get-string 4 --set oem; then
		regexp --set 1:extra '^hello\.cmdline=(.*)\$' "\$oem"
	fi
	multiboot2 /boot/hello.elf $words \$extra
	boot
}
CFG
# BIOS only, without the locales, fonts and themes nobody sees here.
# xorriso is chatty: its output is shown only when it fails.
if ! grub-mkrescue -d /usr/lib/grub/i386-pc --locales= --fonts= --themes= \
	-o "$out.tmp" "$dir/root" >"$dir/log" 2>&1; then
	cat "$dir/log" >&2
	rm -f "$out.tmp"
	exit 1
fi
mv "$out.tmp" "$out"
