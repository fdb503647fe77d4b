# pam_k8stoken — build, test, install.
# Honours CPPFLAGS, CFLAGS and LDFLAGS (dpkg-buildflags). WERROR=1 adds -Werror,
# SANITIZE=1 builds with ASan+UBSan; BUILD selects the output directory.

CC       ?= cc
CFLAGS   ?= -O2 -g
BUILD    ?= build
PKGS     := libcurl json-c libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

MULTIARCH  ?= $(shell $(CC) -print-multiarch 2>/dev/null)
PREFIX     ?= /usr
PAMDIR     ?= $(PREFIX)/lib/$(MULTIARCH)/security
LIBEXECDIR ?= $(PREFIX)/libexec/pam_k8stoken
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
HELPER_PATH ?= $(LIBEXECDIR)/k8stoken-review
VERSION    := 0.1.0

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wnull-dereference -Wpointer-arith -Wconversion -Wno-sign-conversion \
        -Wvla -Wundef
HARDEN := -fstack-protector-strong -fstack-clash-protection -D_FORTIFY_SOURCE=2
ifeq ($(WERROR),1)
WARN += -Werror
endif
ifeq ($(SANITIZE),1)
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
HARDEN := -fstack-protector-strong
endif

ALL_CPPFLAGS := -D_GNU_SOURCE -DKT_HELPER_PATH='"$(HELPER_PATH)"' -DKT_VERSION='"$(VERSION)"' $(CPPFLAGS)
ALL_CFLAGS   := -std=c11 -fPIC -fvisibility=hidden $(WARN) $(HARDEN) $(SAN) $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS  := -Wl,-z,relro -Wl,-z,now $(SAN) $(LDFLAGS)

SRC := pam_k8stoken
LIB_SRCS    := reason.c secure.c config.c rules.c json_strict.c token.c review.c identity.c helper_proto.c cache_entry.c cache_io.c cache.c cache_ops.c
MODULE_SRCS := pam_k8stoken.c auth.c prompt.c decide.c spawn.c account.c logline.c
HELPER_SRCS := review_helper.c http.c
TOOL_SRCS   := k8stoken.c

obj = $(addprefix $(BUILD)/obj/,$(1:.c=.o))
LIB_OBJS    := $(call obj,$(LIB_SRCS))
MODULE_OBJS := $(call obj,$(MODULE_SRCS))
HELPER_OBJS := $(call obj,$(HELPER_SRCS))
TOOL_OBJS   := $(call obj,$(TOOL_SRCS))
LIBK        := $(BUILD)/libk8stoken.a
SHARED_OBJS := $(call obj,decide.c spawn.c account.c logline.c)

MODULE  := $(BUILD)/pam_k8stoken.so
HELPER  := $(BUILD)/k8stoken-review
TOOL    := $(BUILD)/k8stoken
ASKPASS := $(BUILD)/k8stoken-askpass

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
TEST_TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(wildcard tests/tools/*.c))


.PHONY: all test-programs check demo bench deps install clean
all: $(MODULE) $(HELPER) $(TOOL) $(ASKPASS)

$(BUILD)/obj/%.o: $(SRC)/%.c $(wildcard $(SRC)/*.h) | $(BUILD)/obj
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@

$(LIBK): $(LIB_OBJS)
	rm -f $@; ar rcs $@ $^

$(MODULE): $(MODULE_OBJS) $(LIBK) $(SRC)/pam_k8stoken.map
	$(CC) -shared -o $@ $(MODULE_OBJS) $(LIBK) $(ALL_LDFLAGS) \
	  -Wl,--version-script=$(SRC)/pam_k8stoken.map -Wl,-z,defs -Wl,-z,nodelete \
	  $(PKG_LIBS) -lpam

$(HELPER): $(HELPER_OBJS) $(LIBK)
	$(CC) -pie -o $@ $^ $(ALL_LDFLAGS) $(PKG_LIBS)

$(ASKPASS): $(call obj,askpass.c) $(LIBK)
	$(CC) -pie -o $@ $^ $(ALL_LDFLAGS) $(PKG_LIBS)

$(TOOL): $(TOOL_OBJS) $(SHARED_OBJS) $(LIBK)
	$(CC) -pie -o $@ $^ $(ALL_LDFLAGS) $(PKG_LIBS) -lpam

$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIBK) $(SHARED_OBJS) | $(BUILD)/tests
	$(CC) $(ALL_CPPFLAGS) -I$(SRC) $(ALL_CFLAGS) -o $@ $< $(SHARED_OBJS) $(LIBK) \
	  $(ALL_LDFLAGS) $(PKG_LIBS) -lcmocka -lpam

$(BUILD)/tests/%: tests/tools/%.c | $(BUILD)/tests
	$(CC) $(ALL_CPPFLAGS) -I$(SRC) $(ALL_CFLAGS) -rdynamic -o $@ $< $(ALL_LDFLAGS) -lpam -ldl

deps:
	sh tests/install-deps.sh

test-programs: $(UNIT_TESTS) $(TEST_TOOLS)

check: deps
	/usr/bin/python3 tests/run.py

demo: deps
	$(MAKE) all
	/usr/bin/python3 tests/demo.py

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
	install -m 0755 $(SRC)/kubectl-k8stoken $(DESTDIR)$(BINDIR)/kubectl-k8stoken
	# an existing configuration is the administrator's: never overwritten
	[ -e $(DESTDIR)$(SYSCONFDIR)/security/pam_k8stoken.conf ] || \
	  install -m 0644 conf/pam_k8stoken.conf $(DESTDIR)$(SYSCONFDIR)/security/pam_k8stoken.conf

clean:
	rm -rf build build-*
