# qforge build. `make` builds the library and CLI; `make check` installs what
# the tests need (scripts/install-deps.sh) and runs the whole suite;
# `make check-asan` runs the same suite under ASan+UBSan; `make demo` runs
# the Fashion-MNIST showcase.

CC ?= cc
PREFIX ?= /usr/local
BUILD ?= build
ONNX_PROTO ?= /usr/include/onnx/onnx.proto

WARN := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes -Wno-format-truncation
OPT ?= -O2 -g
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -fPIC -pthread \
              -Iinclude -Isrc -I$(BUILD)/gen $(EXTRA_CFLAGS)
LDLIBS := -lprotobuf-c -lcjson -lzstd -lz -lm -lpthread -ldl
LDFLAGS_ALL := -pthread $(EXTRA_LDFLAGS)

LIB_SRC := $(shell find src -name '*.c' ! -path 'src/cli/*' | sort)
CLI_SRC := $(shell find src/cli -name '*.c' 2>/dev/null | sort)
GEN_SRC := $(BUILD)/gen/onnx.pb-c.c
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/onnx.pb-c.o
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: all lib cli tests check check-asan demo install clean deps bench fuzz format

all: lib cli

lib: $(BUILD)/libqforge.a $(BUILD)/libqforge.so
cli: $(BUILD)/qforge
tests: $(TEST_BIN) $(TOOL_BIN)

# Generated protobuf-c code for the ONNX schema that libonnx-dev installs.
$(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h &: $(ONNX_PROTO)
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -I$(dir $(ONNX_PROTO)) $(ONNX_PROTO)

$(BUILD)/obj/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(OPT) -fPIC -w -I$(BUILD)/gen $(EXTRA_CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.c $(BUILD)/gen/onnx.pb-c.h
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libqforge.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libqforge.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS)

$(BUILD)/qforge: $(CLI_OBJ) $(BUILD)/libqforge.a
	$(CC) $(LDFLAGS_ALL) -o $@ $(CLI_OBJ) $(BUILD)/libqforge.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/qtest.h $(BUILD)/libqforge.a
	@mkdir -p $(dir $@)
	@echo "  LD $@"
	@$(CC) $(CFLAGS_ALL) -Itests -o $@ $< $(BUILD)/libqforge.a $(LDLIBS)

$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libqforge.a
	@mkdir -p $(dir $@)
	@echo "  LD $@"
	@$(CC) $(CFLAGS_ALL) -Itests -o $@ $< $(BUILD)/libqforge.a $(LDLIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

$(DEPS_STAMP): scripts/install-deps.sh
	bash scripts/install-deps.sh
	@mkdir -p $(BUILD) && touch $@

deps: $(DEPS_STAMP)

check: $(DEPS_STAMP)
	$(MAKE) -j2 all tests
	bash tests/run_all.sh $(BUILD)

check-asan: $(DEPS_STAMP)
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined" all tests
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  QF_SANITIZE=1 bash tests/run_all.sh build-asan

demo: $(DEPS_STAMP)
	$(MAKE) all
	bash scripts/demo.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(BUILD)/libqforge.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libqforge.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/qforge.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(BUILD)/qforge $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|0.1.0|' qforge.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/qforge.pc

clean:
	rm -rf build build-asan

# libFuzzer targets (clang): build/fuzz/fuzz_<parser>; run e.g.
#   build-fuzz/fuzz/fuzz_onnx -max_total_time=60 /usr/share/libonnx-testdata/data/node/*/model.onnx
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
fuzz:
	$(MAKE) BUILD=build-fuzz CC=clang OPT="-O1 -g" \
	  EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -Wno-unknown-warning-option" lib
	@mkdir -p build-fuzz/fuzz
	for f in $(FUZZ_SRC); do \
	  clang -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
	    -Ibuild-fuzz/gen -o build-fuzz/fuzz/$$(basename $$f .c) $$f build-fuzz/libqforge.a \
	    $(LDLIBS) || exit 1; \
	done

# Side-by-side timing with ONNX Runtime; writes BENCHMARKS.md. BENCH_QUICK=1,
# BENCH_MODELS=a,b and the other knobs are described in bench/run.sh.
bench:
	BUILD=$(BUILD) bash bench/run.sh
	bash bench/train_bench.sh $(BUILD) --write
