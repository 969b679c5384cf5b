#  zkit — build, test, install.
#
#  make            build everything into build/
#  make check      build and run every test (unit, integration, patterns/)
#  make demo       run a real topology on loopback and show messages flowing
#  make bench      the benchmark sweep: build/bench/report.md and PNG plots
#  make bench-queue  the zkit-queue part alone (about 30 s): build/bench-queue/report.md
#  make deps       install the Debian packages the project needs (if missing)
#  make install    PREFIX=/usr/local DESTDIR=  (binaries, library, headers, zkit.pc)
#  make uninstall  remove what install put there
#  make format     apply .clang-format;  make format-check  verify it
#
#  Every target that compiles first makes sure the dependencies are there
#  (`make deps`), then re-runs make with them, so pkg-config answers are
#  read once, after the packages exist.

VERSION_MAJOR := 0
VERSION_MINOR := 1
VERSION_PATCH := 0
VERSION       := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build

DEB_PACKAGES := libzmq3-dev libczmq-dev libmsgpack-dev libcriterion-dev pkg-config python3-zmq \
                gnuplot-nox
PC_MODULES   := libzmq libczmq msgpack

PUBLIC_TARGETS := all lib bins check unit demo bench bench-queue install uninstall

ifeq ($(ZK_DEPS_OK),)

.DEFAULT_GOAL := all
$(PUBLIC_TARGETS): deps
	@$(MAKE) --no-print-directory ZK_DEPS_OK=1 $@

.PHONY: deps clean format format-check $(PUBLIC_TARGETS)
deps:
	@if pkg-config --exists $(PC_MODULES) criterion 2>/dev/null \
	    && /usr/bin/python3 -c 'import zmq' 2>/dev/null \
	    && command -v gnuplot >/dev/null 2>&1; then :; else \
	    echo "make deps: installing $(DEB_PACKAGES)"; \
	    SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	        gcc make $(DEB_PACKAGES) >/dev/null || exit 1; \
	fi

clean:
	rm -rf $(BUILD)

FORMAT_FILES = $(wildcard include/*.h src/*.c src/*.h tools/*.c tests/*.c tests/*.h)
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

else  # ---------------------------------------------------------------- real rules

CC       ?= gcc
CFLAGS   ?= -O2 -g
PC_CFLAGS := $(shell pkg-config --cflags $(PC_MODULES))
PC_LIBS   := $(shell pkg-config --libs $(PC_MODULES))
CRIT_LIBS := $(shell pkg-config --libs criterion)
ZK_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers \
             -fPIC -Iinclude -MMD -MP $(PC_CFLAGS) \
             -DZKIT_BUILD_VERSION='"$(VERSION)"'
LIBS      := $(PC_LIBS) -lpthread -lm

LIB_SRC   := $(filter-out src/zkit-%.c,$(wildcard src/zk_*.c))
LIB_OBJ   := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
DAEMONS   := $(patsubst src/%.c,%,$(wildcard src/zkit-*.c))
TOOLS     := $(patsubst tools/%.c,%,$(wildcard tools/zkit-*.c))
BINS      := $(DAEMONS:%=$(BUILD)/bin/%) $(TOOLS:%=$(BUILD)/bin/%)
TEST_SRC  := $(wildcard tests/*_test.c) tests/testutil.c
TEST_OBJ  := $(TEST_SRC:tests/%.c=$(BUILD)/obj/tests/%.o)
TEST_BIN  := $(BUILD)/tests/zkit-tests

SONAME    := libzkit.so.$(VERSION_MAJOR)
STATIC    := $(BUILD)/lib/libzkit.a
SHARED    := $(BUILD)/lib/libzkit.so

all: lib bins $(BUILD)/lib/zkit.pc
lib: $(STATIC) $(SHARED)
bins: $(BINS)

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(ZK_CFLAGS) $(CFLAGS) -c $< -o $@
$(BUILD)/obj/tools/%.o: tools/%.c
	@mkdir -p $(@D)
	$(CC) $(ZK_CFLAGS) $(CFLAGS) -c $< -o $@
$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(ZK_CFLAGS) $(CFLAGS) -Wno-unused-parameter -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^
$(SHARED): $(LIB_OBJ)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,$(SONAME) -o $@.$(VERSION) $^ $(LIBS)
	ln -sf libzkit.so.$(VERSION) $(BUILD)/lib/$(SONAME)
	ln -sf $(SONAME) $@

#  Binaries link the static library: they run from build/ without LD_LIBRARY_PATH.
$(BUILD)/bin/%: $(BUILD)/obj/%.o $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) $(LIBS)
$(BUILD)/bin/%: $(BUILD)/obj/tools/%.o $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) $(LIBS)

$(BUILD)/lib/zkit.pc: src/zkit.pc.in Makefile
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

$(TEST_BIN): $(TEST_OBJ) $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(STATIC) $(LIBS) $(CRIT_LIBS)

#  `make check`: the Criterion suites (unit + integration of the real binaries),
#  then the shell tests and every patterns/ script; tests/run.sh prints the
#  final "N passed, N failed" line.
check: all $(TEST_BIN)
	@ZK_BIN=$(abspath $(BUILD)/bin) ZK_TEST_BIN=$(abspath $(TEST_BIN)) tests/run.sh
unit: all $(TEST_BIN)
	$(TEST_BIN)

demo: all
	@ZK_BIN=$(abspath $(BUILD)/bin) patterns/demo.sh

#  `make bench`: the standard sweep (tools/bench-sweep.sh, a few minutes):
#  build/bench/report.md and the PNG plots beside it.
bench: all
	@ZK_BIN=$(abspath $(BUILD)/bin) tools/bench-sweep.sh $(BUILD)/bench

#  `make bench-queue`: the queue part alone (about 30 s): build/bench-queue/report.md.
bench-queue: all
	@ZK_BIN=$(abspath $(BUILD)/bin) BENCH_PARTS=queue tools/bench-sweep.sh $(BUILD)/bench-queue

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED).$(VERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libzkit.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libzkit.so
	install -m 644 include/*.h $(DESTDIR)$(PREFIX)/include/
	#  zkit.pc names the PREFIX given to this install, not the one of the build.
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' src/zkit.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/zkit.pc

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/bin/,$(notdir $(BINS)))
	rm -f $(DESTDIR)$(PREFIX)/lib/libzkit.a $(DESTDIR)$(PREFIX)/lib/libzkit.so \
	      $(DESTDIR)$(PREFIX)/lib/$(SONAME) $(DESTDIR)$(PREFIX)/lib/libzkit.so.$(VERSION)
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/include/,$(notdir $(wildcard include/*.h)))
	rm -f $(DESTDIR)$(PREFIX)/lib/pkgconfig/zkit.pc

#  Keep the binaries' objects: no "rm *.o" after the test summary.
.SECONDARY:
.PHONY: $(PUBLIC_TARGETS)
-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/obj/tools/*.d $(BUILD)/obj/tests/*.d)

endif
