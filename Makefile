# pam_k8stoken — build, test, install.
# Honours CPPFLAGS, CFLAGS and LDFLAGS (dpkg-buildflags). WERROR=1 adds -Werror,
# SANITIZE=1 builds with ASan+UBSan, SANITIZE=thread with TSan; BUILD selects the output directory.

CC       ?= cc
CFLAGS   ?= -O2 -g
BUILD    ?= build
PKGS     := libcurl json-c libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

MULTIARCH  ?= $(shell $(CC) -print-multiarch 2>/dev/null)
PREFIX     ?= /usr
# where `cc -print-multiarch` says nothing (non-Debian toolchains), libpam's own pam.pc knows
PAMDIR     ?= $(if $(MULTIARCH),$(PREFIX)/lib/$(MULTIARCH)/security,$(shell pkg-config --variable=securedir pam))
LIBEXECDIR ?= $(PREFIX)/libexec/pam_k8stoken
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
MANDIR     ?= $(PREFIX)/share/man
SYSTEMDUNITDIR ?= /lib/systemd/system
HELPER_PATH ?= $(LIBEXECDIR)/k8stoken-review
VERSION    := 0.1.0

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wnull-dereference -Wpointer-arith -Wconversion -Wno-sign-conversion \
        -Wvla -Wundef
HARDEN := -fstack-protector-strong -fstack-clash-protection -D_FORTIFY_SOURCE=2
# Control-flow protection (hardening-check's "Control flow integrity"): x86 CET or Arm
# branch protection, whichever the compiler accepts for this target; dpkg 1.21 does not add it.
CF_PROTECTION := $(firstword $(foreach f,-fcf-protection=full -mbranch-protection=standard,\
  $(shell $(CC) -Werror $(f) -E -x c /dev/null >/dev/null 2>&1 && echo $(f))))
HARDEN += $(CF_PROTECTION)
ifeq ($(WERROR),1)
WARN += -Werror
endif
ifeq ($(SANITIZE),1)
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
HARDEN := -fstack-protector-strong
endif
# SANITIZE=thread: ThreadSanitizer, for tests/tools/pam_threads.c (tests/module/test_threads.py)
ifeq ($(SANITIZE),thread)
SAN := -fsanitize=thread -fno-omit-frame-pointer
HARDEN := -fstack-protector-strong
endif

# The source folders are the map of what is built (docs/design.md §1):
#   util/    secrets, file and number primitives          } libk8stoken.a, linked into
#   core/    config, rules, token, review, cache, keys    } every program
#   module/  pam_k8stoken.so: PAM entry points, prompt, decision, helper spawn, log lines
#   helper/  k8stoken-review: the HTTPS client to the API server (also used by k8stoken)
#   tools/   k8stoken, k8stoken-askpass, kubectl-k8stoken
SRC      := pam_k8stoken
SRC_DIRS := $(addprefix $(SRC)/,util core module helper tools)
HEADERS  := $(wildcard $(addsuffix /*.h,$(SRC_DIRS)))
vpath %.c $(SRC_DIRS)
srcs = $(notdir $(wildcard $(addprefix $(SRC)/,$(addsuffix /*.c,$(1)))))
LIB_SRCS    := $(call srcs,util core)
MODULE_SRCS := $(call srcs,module)
HELPER_SRCS := $(call srcs,helper)
TOOL_SRCS   := k8stoken.c renew.c enroll.c http.c

# TRUSTED_UID: the owner trusted files must have; 0 except in the fast tier's test build
TRUSTED_UID ?= 0
ALL_CPPFLAGS := $(addprefix -iquote ,$(SRC_DIRS)) -D_GNU_SOURCE -DKT_TRUSTED_UID=$(TRUSTED_UID) -DKT_HELPER_PATH='"$(HELPER_PATH)"' -DKT_VERSION='"$(VERSION)"' $(CPPFLAGS)
ALL_CFLAGS   := -std=c11 -fPIC -fvisibility=hidden $(WARN) $(HARDEN) $(SAN) $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS  := -Wl,-z,relro -Wl,-z,now $(SAN) $(LDFLAGS)


obj = $(addprefix $(BUILD)/obj/,$(1:.c=.o))
LIB_OBJS    := $(call obj,$(LIB_SRCS))
MODULE_OBJS := $(call obj,$(MODULE_SRCS))
HELPER_OBJS := $(call obj,$(HELPER_SRCS))
TOOL_OBJS   := $(call obj,$(TOOL_SRCS))
LIBK        := $(BUILD)/libk8stoken.a
# the module's decision path without its PAM entry points: also run by `k8stoken test`
SHARED_OBJS := $(call obj,$(filter-out pam_k8stoken.c auth.c prompt.c,$(MODULE_SRCS)))

MODULE  := $(BUILD)/pam_k8stoken.so
HELPER  := $(BUILD)/k8stoken-review
TOOL    := $(BUILD)/k8stoken
ASKPASS := $(BUILD)/k8stoken-askpass

MANPAGES   := $(wildcard man/*.1 man/*.5 man/*.8)
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
TEST_TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(wildcard tests/tools/*.c))


.PHONY: all test-programs fuzz fuzz-programs check check-quick check-fast check-unit demo demo-kube kube bench deps install deb deb-test clean
all: $(MODULE) $(HELPER) $(TOOL) $(ASKPASS)

$(BUILD)/obj/%.o: %.c $(HEADERS) | $(BUILD)/obj
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@

$(LIBK): $(LIB_OBJS)
	rm -f $@; ar rcs $@ $^

$(MODULE): $(MODULE_OBJS) $(LIBK) $(SRC)/module/pam_k8stoken.map
	$(CC) -shared -o $@ $(MODULE_OBJS) $(LIBK) $(ALL_LDFLAGS) \
	  -Wl,--version-script=$(SRC)/module/pam_k8stoken.map -Wl,-z,defs -Wl,-z,nodelete \
	  $(PKG_LIBS) -lpam

$(HELPER): $(HELPER_OBJS) $(LIBK)
	$(CC) -pie -o $@ $^ $(ALL_LDFLAGS) $(PKG_LIBS)

$(ASKPASS): $(call obj,askpass.c) $(LIBK)
	$(CC) -pie -o $@ $^ $(ALL_LDFLAGS) $(PKG_LIBS)

$(TOOL): $(TOOL_OBJS) $(SHARED_OBJS) $(LIBK)
	$(CC) -pie -o $@ $^ $(ALL_LDFLAGS) $(PKG_LIBS) -lpam

$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIBK) $(SHARED_OBJS) | $(BUILD)/tests
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(SHARED_OBJS) $(LIBK) \
	  $(ALL_LDFLAGS) $(PKG_LIBS) -lcmocka -lpam

$(BUILD)/tests/%: tests/tools/%.c | $(BUILD)/tests
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -rdynamic -o $@ $< $(ALL_LDFLAGS) -lpam -ldl

# libFuzzer targets (tests/fuzz/, clang from Debian: clang-14 libclang-rt-14-dev), built with
# ASan+UBSan into $(FUZZ_DIR); `make fuzz FUZZ_SECONDS=N` runs each for N seconds (0: the
# corpus once) and fails on a crash or a broken invariant, its input saved in $(FUZZ_DIR).
FUZZ_CC      ?= $(firstword $(shell command -v clang-14 clang 2>/dev/null) clang-14)
FUZZ_SECONDS ?= 60
FUZZ_DIR     ?= $(BUILD)/fuzz
FUZZ_FLAGS   := -std=c11 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=all $(PKG_CFLAGS)
FUZZ_OBJS    := $(addprefix $(FUZZ_DIR)/obj/,$(LIB_SRCS:.c=.o) http.o jwks_fetch.o)
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard tests/fuzz/fuzz_*.c))

$(FUZZ_DIR)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# a target may include a program's source (askpass.c, review_helper.c) with its main renamed
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OBJS) $(wildcard $(addsuffix /*.c,$(SRC_DIRS)))
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(PKG_LIBS)

fuzz-programs: $(FUZZ_TARGETS)
.SECONDARY: $(FUZZ_OBJS)

fuzz: $(FUZZ_TARGETS)
	nice -n 10 /usr/bin/python3 tests/fuzz/run.py --dir $(FUZZ_DIR) --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# LD_PRELOAD libraries of the module tests (tests/tools/preload/): allocation failure injection.
PRELOADS := $(patsubst tests/tools/preload/%.c,$(BUILD)/tests/%.so,$(wildcard tests/tools/preload/*.c))
$(BUILD)/tests/%.so: tests/tools/preload/%.c | $(BUILD)/tests
	$(CC) -std=c11 -g -O1 -fPIC -shared -Wall -Wextra $(CFLAGS) -o $@ $< -ldl
test-programs: $(PRELOADS)

deps:
	sh tests/install-deps.sh

test-programs: $(UNIT_TESTS) $(TEST_TOOLS)

check: deps
	/usr/bin/python3 tests/run.py

# The fast tier for developers: every suite once, without the ASan+UBSan and valgrind passes.
check-quick: deps
	KT_CHECK_QUICK=1 /usr/bin/python3 tests/run.py

# Without root, in about a minute: repository checks, unit tests, the test API server and the
# module tests not marked needs_root or slow, against BUILD=build-user built with
# TRUSTED_UID=$(id -u) (tests/run.py); `make check` runs what it leaves out.
check-fast: deps
	KT_CHECK_FAST=1 /usr/bin/python3 tests/run.py

# Only the cmocka unit tests (no root, no network, no sshd): what dh_auto_test runs.
check-unit: $(UNIT_TESTS)
	@fail=0; for t in $(UNIT_TESTS); do echo "== $$t"; $$t || fail=1; done; exit $$fail

demo: deps
	$(MAKE) all
	/usr/bin/python3 tests/demo.py

# etcd, kube-apiserver and kube-controller-manager of the release pinned in tests/kube/go.mod,
# built from the Go module proxy into build/kube/ (test binaries only; reused once built).
kube:
	sh tests/kube/build.sh

# make demo against a real kube-apiserver started on loopback (tests/lib/cluster.py).
demo-kube: deps kube
	$(MAKE) all
	KT_DEMO_KUBE=1 /usr/bin/python3 tests/demo.py

bench: deps
	$(MAKE) all
	/usr/bin/python3 tests/bench.py

install: all
	install -d $(DESTDIR)$(PAMDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(SBINDIR) \
	  $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/security
	install -m 0644 $(MODULE) $(DESTDIR)$(PAMDIR)/pam_k8stoken.so
	install -m 0755 $(HELPER) $(DESTDIR)$(LIBEXECDIR)/k8stoken-review
	install -m 0755 $(TOOL) $(DESTDIR)$(SBINDIR)/k8stoken
	install -m 0755 $(ASKPASS) $(DESTDIR)$(BINDIR)/k8stoken-askpass
	install -m 0755 $(SRC)/tools/kubectl-k8stoken $(DESTDIR)$(BINDIR)/kubectl-k8stoken
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 0644 conf/systemd/k8stoken-renew.service conf/systemd/k8stoken-renew.timer \
	  $(DESTDIR)$(SYSTEMDUNITDIR)/
	# an existing configuration is the administrator's: never overwritten
	[ -e $(DESTDIR)$(SYSCONFDIR)/security/pam_k8stoken.conf ] || \
	  install -m 0644 conf/pam_k8stoken.conf $(DESTDIR)$(SYSCONFDIR)/security/pam_k8stoken.conf
	for page in $(MANPAGES); do \
	  sec=$${page##*.}; install -d $(DESTDIR)$(MANDIR)/man$$sec; \
	  install -m 0644 $$page $(DESTDIR)$(MANDIR)/man$$sec/; \
	done

# The Debian package libpam-k8stoken (debian/). dpkg-buildpackage writes its results into
# the parent directory and runs `make clean` first, so it works on a copy of the tree in
# $(DEB_DIR)/libpam-k8stoken-$(VERSION) (without build outputs); the .deb files, .changes
# and .buildinfo end up in $(DEB_DIR).
DEB_DIR := build/deb
deb:
	sh tests/install-deps.sh deb
	rm -rf $(DEB_DIR); mkdir -p $(DEB_DIR)/libpam-k8stoken-$(VERSION)
	tar -c --exclude=./.git --exclude=./build --exclude='./build-*' --exclude=.pytest_cache \
	  --exclude=__pycache__ . | tar -x -C $(DEB_DIR)/libpam-k8stoken-$(VERSION)
	cd $(DEB_DIR)/libpam-k8stoken-$(VERSION) && dpkg-buildpackage -b -us -uc
	rm -rf $(DEB_DIR)/libpam-k8stoken-$(VERSION)
	ls -l $(DEB_DIR)

# Builds the package, runs lintian and hardening-check, installs it, logs in through the
# installed module with a real sshd, purges it; root (CI). Ends with "N passed, N failed".
deb-test: deps
	/usr/bin/python3 tests/deb/run.py

clean:
	rm -rf build build-*
