# beckon: `make` builds build/beckond, build/beckonctl and build/hello.elf.
# `make test` builds, then runs unit and integration tests (also under ASan+UBSan).
# `make deps` installs the Debian packages the build, tests and demo need.

CC       ?= cc
PKGS     := ldns libevent libconfig jansson libnl-3.0 libnl-route-3.0 libnl-nf-3.0 libcap
MODULES  := common conf resolver launcher launcher/proc launcher/revive launcher/room \
	    launcher/hosts launcher/pattern launcher/exec launcher/qemu hostnet proxy policy daemon
# The libvirt backend is built where libvirt-dev (and libxml2-dev) are installed.
HAVE_LIBVIRT := $(shell pkg-config --exists libvirt libxml-2.0 2>/dev/null && echo yes)
ifeq ($(HAVE_LIBVIRT),yes)
PKGS     += libvirt libxml-2.0
MODULES  += launcher/libvirt
DEFS     += -DHAVE_LIBVIRT
endif
# The Xen backend is built where libxen-dev (libxenlight, libxlutil) is installed.
HAVE_XEN := $(shell pkg-config --exists xenlight xlutil 2>/dev/null && echo yes)
ifeq ($(HAVE_XEN),yes)
PKGS     += xenlight xlutil
MODULES  += launcher/xen
DEFS     += -DHAVE_XEN
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
INCS     := $(addprefix -I,$(MODULES))
WARN     := -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wstrict-prototypes
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(CPPFLAGS) $(CFLAGS) $(WARN) -D_GNU_SOURCE $(DEFS) $(INCS) $(PKG_CFLAGS) -MMD -MP
LIBS     := $(PKG_LIBS) -lpthread
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRCS := $(filter-out daemon/main.c,$(wildcard $(addsuffix /*.c,$(MODULES))))
CTL_SRCS := $(wildcard ctl/*.c) common/log.c
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
ifneq ($(HAVE_LIBVIRT),yes)
UNIT_SRCS := $(filter-out tests/unit/test_libvirt%,$(UNIT_SRCS))
endif
ifneq ($(HAVE_XEN),yes)
UNIT_SRCS := $(filter-out tests/unit/test_xen%,$(UNIT_SRCS))
endif

# Two flavours of every object: plain in build/obj, sanitized in build/asan/obj.
obj  = $(patsubst %.c,build/obj/%.o,$(1))
aobj = $(patsubst %.c,build/asan/obj/%.o,$(1))

UNIT_BINS  := $(patsubst tests/unit/%.c,build/unit/%,$(UNIT_SRCS))
AUNIT_BINS := $(patsubst tests/unit/%.c,build/asan/unit/%,$(UNIT_SRCS))

.PHONY: all asan helpers test unit bench demo deps clean format fuzz
# Keep intermediate objects: no "rm" line after the test summary, faster rebuilds.
.SECONDARY:
all: build/beckond build/beckonctl guest

build/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

build/asan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -c -o $@ $<

build/libbeckon.a: $(call obj,$(LIB_SRCS))
	@rm -f $@; ar rcs $@ $^
build/asan/libbeckon.a: $(call aobj,$(LIB_SRCS))
	@rm -f $@; ar rcs $@ $^

build/beckond: build/obj/daemon/main.o build/libbeckon.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)
build/asan/beckond: build/asan/obj/daemon/main.o build/asan/libbeckon.a
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LIBS)
build/beckonctl: $(call obj,$(CTL_SRCS))
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)
build/asan/beckonctl: $(call aobj,$(CTL_SRCS))
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LIBS)

# Objects first, the library after them: a shared fixture needs it too.
build/unit/%: build/obj/tests/unit/%.o build/libbeckon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LIBS) -lcmocka
build/asan/unit/%: build/asan/obj/tests/unit/%.o build/asan/libbeckon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LIBS) -lcmocka
# The unit tests that run processes through a launcher share tests/unit/fixture.c.
FIX_UNITS := test_idle test_launcher
$(addprefix build/unit/,$(FIX_UNITS)): build/obj/tests/unit/fixture.o
$(addprefix build/asan/unit/,$(FIX_UNITS)): build/asan/obj/tests/unit/fixture.o

# Small drivers the integration tests run (tests/helpers/*.c).
HELPER_SRCS := $(wildcard tests/helpers/*.c)
HELPERS := $(patsubst tests/helpers/%.c,build/helpers/%,$(HELPER_SRCS)) \
	   $(patsubst tests/helpers/%.c,build/asan/helpers/%,$(HELPER_SRCS))
build/helpers/%: build/obj/tests/helpers/%.o build/libbeckon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS)
build/asan/helpers/%: build/asan/obj/tests/helpers/%.o build/asan/libbeckon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LIBS)
helpers: $(HELPERS)

asan: build/asan/beckond build/asan/beckonctl
unit: $(UNIT_BINS) $(AUNIT_BINS)

include guest/guest.mk
include tests/fuzz/fuzz.mk

test: all asan unit helpers
	@tests/run.sh

# The same with two CPU hogs beside it, BUSY_RUNS times (default 3).
.PHONY: test-busy
test-busy: all asan unit helpers
	@tests/busy.sh

# The Xen lab: Xen under QEMU, beckond in its dom0, the Xen tests there (tests/xen/).
.PHONY: xen-lab bench-xen
xen-lab: all
	@tests/xen/lab.sh
# The Xen figures, in the lab (tests/xen/bench.sh); kept in tests/bench/results/.
bench-xen: all
	@XEN_LAB_RUN=bench.sh tests/xen/lab.sh | tee build/bench-xen.out
	@{ echo "# make bench-xen, $$(date -u +%FT%TZ), $$(nproc) cores, TCG under Xen under QEMU (no KVM)"; \
	   grep -E '^# (bench|lab)' build/bench-xen.out; } >tests/bench/results/xen-$$(date +%Y-%m-%d).txt

bench: all helpers
	@tests/bench/run.sh

demo: deps all
	@conf/examples/demo.sh

deps:
	@tests/deps.sh

# ---- install (GNU conventions: `make install PREFIX=/usr DESTDIR=/tmp/root`) ----
# The tree is in README.md ("Installing"). The config is installed only
# when none is there: an upgrade keeps the user's.
PREFIX        ?= /usr/local
prefix        ?= $(PREFIX)
exec_prefix   ?= $(prefix)
bindir        ?= $(exec_prefix)/bin
sbindir       ?= $(exec_prefix)/sbin
datarootdir   ?= $(prefix)/share
datadir       ?= $(datarootdir)
pkglibdir     ?= $(exec_prefix)/lib/beckon
docdir        ?= $(datarootdir)/doc/beckon
mandir        ?= $(datarootdir)/man
sysconfdir    ?= $(prefix)/etc
localstatedir ?= $(prefix)/var
runstatedir   ?= /run
unitdir       ?= $(prefix)/lib/systemd/system
INSTALL       ?= install
SUBST = sed -e 's|@sbindir@|$(sbindir)|g' -e 's|@bindir@|$(bindir)|g' \
	-e 's|@sysconfdir@|$(sysconfdir)|g' -e 's|@localstatedir@|$(localstatedir)|g' \
	-e 's|@runstatedir@|$(runstatedir)|g' -e 's|@pkglibdir@|$(pkglibdir)|g'

# Made again on every install: the paths come from the command line.
.PHONY: FORCE
FORCE:
build/beckond.service: daemon/beckond.service.in FORCE
	@mkdir -p build
	$(SUBST) $< >$@
build/beckon.conf: conf/beckon.conf.in FORCE
	@mkdir -p build
	$(SUBST) $< >$@

.PHONY: install uninstall package
install: all build/beckond.service build/beckon.conf
	$(INSTALL) -d $(DESTDIR)$(sbindir) $(DESTDIR)$(bindir) $(DESTDIR)$(pkglibdir) \
		$(DESTDIR)$(mandir)/man5 $(DESTDIR)$(mandir)/man8 $(DESTDIR)$(unitdir) \
		$(DESTDIR)$(docdir)/examples $(DESTDIR)$(sysconfdir)/beckon
	$(INSTALL) -m 0755 build/beckond $(DESTDIR)$(sbindir)/beckond
	$(INSTALL) -m 0755 build/beckonctl $(DESTDIR)$(bindir)/beckonctl
	$(INSTALL) -m 0644 build/hello.elf $(DESTDIR)$(pkglibdir)/hello.elf
	$(INSTALL) -m 0644 daemon/beckond.8 ctl/beckonctl.8 $(DESTDIR)$(mandir)/man8/
	$(INSTALL) -m 0644 conf/beckon.conf.5 $(DESTDIR)$(mandir)/man5/
	$(INSTALL) -m 0644 build/beckond.service $(DESTDIR)$(unitdir)/beckond.service
	$(INSTALL) -m 0644 build/beckon.conf $(DESTDIR)$(docdir)/examples/beckon.conf
	$(INSTALL) -m 0644 conf/examples/*.conf $(DESTDIR)$(docdir)/examples/
	[ -e $(DESTDIR)$(sysconfdir)/beckon/beckon.conf ] || \
		$(INSTALL) -m 0644 build/beckon.conf $(DESTDIR)$(sysconfdir)/beckon/beckon.conf
	$(INSTALL) -d -m 0700 $(DESTDIR)$(localstatedir)/lib/beckon

# What install put there, but the config (the user's) and the state (guests' saves).
uninstall: build/beckon.conf
	rm -f $(DESTDIR)$(sbindir)/beckond $(DESTDIR)$(bindir)/beckonctl \
		$(DESTDIR)$(pkglibdir)/hello.elf $(DESTDIR)$(unitdir)/beckond.service \
		$(DESTDIR)$(mandir)/man8/beckond.8 $(DESTDIR)$(mandir)/man8/beckonctl.8 \
		$(DESTDIR)$(mandir)/man5/beckon.conf.5
	rm -rf $(DESTDIR)$(docdir)
	-rmdir $(DESTDIR)$(pkglibdir) $(DESTDIR)$(localstatedir)/lib/beckon 2>/dev/null
	-cmp -s build/beckon.conf $(DESTDIR)$(sysconfdir)/beckon/beckon.conf && \
		rm -f $(DESTDIR)$(sysconfdir)/beckon/beckon.conf
	-rmdir $(DESTDIR)$(sysconfdir)/beckon 2>/dev/null

# A Debian package in build/deb/ (debian/; needs debhelper: make deps).
package:
	@tests/package.sh

format:
	clang-format -i $(wildcard */*.c */*.h */*/*.c */*/*.h tests/*/*.c)

clean:
	rm -rf build

# build/xen holds the Xen lab's dom0 tree (directories named *.d): not looked at.
-include $(shell find build -path build/xen -prune -o -name '*.d' -type f -print 2>/dev/null)
