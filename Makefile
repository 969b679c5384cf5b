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
#  make check SANITIZE=1   the same suite built with ASan + UBSan, in build/asan/
#  make fuzz       run each libFuzzer target (tests/fuzz/) for FUZZ_SECONDS (60) with clang
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
#  SANITIZE=1: everything (library, binaries, tests) with AddressSanitizer
#  and UndefinedBehaviorSanitizer, in a build dir of its own.
ifneq ($(SANITIZE),)
BUILD   ?= build/asan
endif
BUILD   ?= build

#  perl, jq, iproute2: patterns/drone-delivery (tap timestamps, trace.sh,
#  the network-namespace test).
DEB_PACKAGES := libzmq3-dev libczmq-dev libmsgpack-dev libcriterion-dev pkg-config python3-zmq \
                gnuplot-nox perl jq iproute2
PC_MODULES   := libzmq libczmq msgpack

PUBLIC_TARGETS := all lib bins check unit demo bench bench-queue install uninstall
PUBLIC_TARGETS += fuzz fuzz-build

ifeq ($(ZK_DEPS_OK),)

.DEFAULT_GOAL := all
$(PUBLIC_TARGETS): deps
	@$(MAKE) --no-print-directory ZK_DEPS_OK=1 $@

.PHONY: deps clean format format-check $(PUBLIC_TARGETS)
deps:
	@if pkg-config --exists $(PC_MODULES) criterion 2>/dev/null \
	    && /usr/bin/python3 -c 'import zmq' 2>/dev/null \
	    && command -v gnuplot >/dev/null 2>&1 && command -v jq >/dev/null 2>&1 \
	    && command -v ip >/dev/null 2>&1 \
	    && perl -MTime::HiRes -MTime::Local -e 1 2>/dev/null; then :; else \
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
ifneq ($(SANITIZE),)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
#  -Wno-error: instrumentation changes gcc's value-range analysis, and so
#  its warnings (format-truncation, maybe-uninitialized); the plain build
#  stays the warning gate.
CFLAGS    += $(SAN_FLAGS) -Wno-error
LDFLAGS   += $(SAN_FLAGS)
#  Reports go to files, $(BUILD)/sanitizer/asan.PROGRAM.PID (and ubsan.*),
#  not to stderr: the binaries the tests spawn have theirs in temporary files.
#  verify_asan_link_order=0: tests/install_test.sh links the installed
#  (sanitized) libzkit.so into a program built without ASan.
#  allocator_may_return_null=1: a failed malloc returns NULL, as without
#  ASan (tests cap the address space to prove a limit holds).
#  tests/sanitizer_reports_test.sh fails the run when a report was written;
#  `check` empties the directory first. LeakSanitizer ignores Criterion's
#  own allocations ($(BUILD)/lsan.supp).
export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=1:allocator_may_return_null=1:verify_asan_link_order=0:log_path=$(abspath $(BUILD))/sanitizer/asan:log_exe_name=1
export UBSAN_OPTIONS ?= halt_on_error=1:print_stacktrace=1:log_path=$(abspath $(BUILD))/sanitizer/ubsan:log_exe_name=1
export LSAN_OPTIONS ?= suppressions=$(abspath $(BUILD))/lsan.supp:print_suppressions=0
$(shell mkdir -p $(BUILD)/sanitizer && printf 'leak:libcriterion.so\n' > $(BUILD)/lsan.supp)
endif
PC_CFLAGS := $(shell pkg-config --cflags $(PC_MODULES))
PC_LIBS   := $(shell pkg-config --libs $(PC_MODULES))
CRIT_LIBS := $(shell pkg-config --libs criterion)
ZK_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers \
             -fPIC -Iinclude -MMD -MP $(PC_CFLAGS) \
             -DZKIT_BUILD_VERSION='"$(VERSION)"'
LIBS      := $(PC_LIBS) -lpthread -lm
ifneq ($(SANITIZE),)
LIBS      += $(SAN_FLAGS)
endif

LIB_SRC   := $(filter-out src/zkit-%.c,$(wildcard src/zk_*.c))
LIB_OBJ   := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
DAEMONS   := $(patsubst src/%.c,%,$(wildcard src/zkit-*.c))
TOOLS     := $(patsubst tools/%.c,%,$(wildcard tools/zkit-*.c))
BINS      := $(DAEMONS:%=$(BUILD)/bin/%) $(TOOLS:%=$(BUILD)/bin/%)
TEST_SRC  := $(wildcard tests/*_test.c) tests/testutil.c
TEST_OBJ  := $(TEST_SRC:tests/%.c=$(BUILD)/obj/tests/%.o)
#  The fuzz targets are linked into the test binary too: tests/fuzz_replay_test.c
#  replays their seed corpora and regression inputs (tests/fuzz/) in `make check`.
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
TEST_OBJ  += $(FUZZ_SRC:tests/%.c=$(BUILD)/obj/tests/%.o)
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

ifneq ($(SANITIZE),)
check: sanitizer-reset
sanitizer-reset:
	rm -f $(BUILD)/sanitizer/*
.PHONY: sanitizer-reset
endif

#  `make fuzz`: the libFuzzer targets (tests/fuzz/fuzz_*.c) and the library,
#  built with clang, -fsanitize=fuzzer,address,undefined into build/fuzz/,
#  each run for FUZZ_SECONDS, one after the other (one process, no -jobs).
#  New inputs go to build/fuzz/corpus/TARGET (the committed seeds in
#  tests/fuzz/corpus/TARGET are only read), crashes to build/fuzz/crashes/.
#  FUZZ_TARGETS="spec zkq" picks some; FUZZ_ARGS adds libFuzzer flags.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= envelope spec zkq journal
FUZZ_CC      ?= clang
FUZZ_DIR     := build/fuzz
FUZZ_ARGS    ?=
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -g -O1 $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_LIB_OBJ := $(LIB_SRC:src/%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
#  -max_len per target: past each decoder's limits, small enough to run fast.
FUZZ_MAX_LEN_envelope := 8192
FUZZ_MAX_LEN_spec     := 8192
FUZZ_MAX_LEN_zkq      := 8192
FUZZ_MAX_LEN_journal  := 4096

$(FUZZ_DIR)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(ZK_CFLAGS) $(FUZZ_CFLAGS) -c $< -o $@
$(FUZZ_DIR)/obj/tests/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(ZK_CFLAGS) $(FUZZ_CFLAGS) -DZK_FUZZER -c $< -o $@
$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz_%.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LIBS)

fuzz-build:
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz needs $(FUZZ_CC) (apt-get install clang)"; exit 1; }
	@$(MAKE) --no-print-directory ZK_DEPS_OK=1 $(FUZZ_BINS)

fuzz: fuzz-build
	@mkdir -p $(FUZZ_DIR)/crashes $(FUZZ_DIR)/logs
	@status=0; for target in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_DIR)/corpus/$$target tests/fuzz/regress/$$target; \
	    dict=; [ -f tests/fuzz/$$target.dict ] && dict=-dict=tests/fuzz/$$target.dict; \
	    echo "== fuzz_$$target: $(FUZZ_SECONDS) s (log: $(FUZZ_DIR)/logs/$$target.log)"; \
	    $(FUZZ_DIR)/fuzz_$$target -max_total_time=$(FUZZ_SECONDS) -timeout=30 \
	        -rss_limit_mb=2048 -print_final_stats=1 $$dict \
	        -artifact_prefix=$(FUZZ_DIR)/crashes/$$target- \
	        -max_len=$$(case $$target in journal) echo $(FUZZ_MAX_LEN_journal);; \
	            envelope) echo $(FUZZ_MAX_LEN_envelope);; spec) echo $(FUZZ_MAX_LEN_spec);; \
	            *) echo $(FUZZ_MAX_LEN_zkq);; esac) $(FUZZ_ARGS) \
	        $(FUZZ_DIR)/corpus/$$target tests/fuzz/corpus/$$target tests/fuzz/regress/$$target \
	        >$(FUZZ_DIR)/logs/$$target.log 2>&1 || status=1; \
	    grep -E '^#[0-9]+[[:space:]]+DONE' $(FUZZ_DIR)/logs/$$target.log | tail -n 1; \
	    grep -E '^stat::' $(FUZZ_DIR)/logs/$$target.log | tr '\n' ' '; echo; \
	    grep -E 'ERROR: |SUMMARY: |artifact_prefix|Test unit written' $(FUZZ_DIR)/logs/$$target.log | head -n 5; \
	done; \
	ls $(FUZZ_DIR)/crashes | sed 's|^|crash: $(FUZZ_DIR)/crashes/|'; \
	exit $$status

-include $(wildcard $(FUZZ_DIR)/obj/*.d $(FUZZ_DIR)/obj/tests/*.d $(BUILD)/obj/tests/fuzz/*.d)

#  Keep the binaries' objects: no "rm *.o" after the test summary.
.SECONDARY:
.PHONY: $(PUBLIC_TARGETS)
-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/obj/tools/*.d $(BUILD)/obj/tests/*.d)

endif
