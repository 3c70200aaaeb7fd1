# p11kit-wasm build. Everything built lands in dist/ (ignored by git).
#   make demo   - the main job: install what is missing, build, run the demo
#   make test   - install what is missing, build, run every test suite
#   make bench  - the benchmarks

SHELL := /bin/bash
EMCC ?= emcc
CC ?= gcc
CLANG ?= clang
OUT := dist

CORE_SRC := $(wildcard wasm/*.c)
CORE_HDR := $(wildcard wasm/*.h)
FUZZ_SRC := $(wildcard wasm/fuzz/*.c)
FIXTURE_SRC := $(wildcard test/fixtures/*.c)
ORACLE_SRC := $(wildcard test/oracle/*.c)
BENCH_SRC := $(wildcard bench/native/*.c)

WASM := $(OUT)/p11kit.wasm
FIXTURES := $(patsubst test/fixtures/%.c,$(OUT)/native/fixtures/%.so,$(FIXTURE_SRC))
ORACLES := $(patsubst test/oracle/%.c,$(OUT)/native/oracle/%,$(ORACLE_SRC))
FUZZERS := $(patsubst wasm/fuzz/%.c,$(OUT)/native/fuzz/%,$(FUZZ_SRC))
BENCH_NATIVE := $(patsubst bench/native/%.c,$(OUT)/native/bench/%,$(BENCH_SRC))
BENCH_LOOP_SRC := $(wildcard bench/native/loops/*.c)
BENCH_LOOPS := $(patsubst bench/native/loops/%.c,$(OUT)/native/bench/lib%.so,$(BENCH_LOOP_SRC))
P11KIT_CFLAGS = $$(pkg-config --cflags p11-kit-1)
P11KIT_LIBS = $$(pkg-config --libs p11-kit-1)

WASM_FLAGS := -O2 -DNDEBUG -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -sSTANDALONE_WASM --no-entry \
	-sALLOW_MEMORY_GROWTH=1 -sINITIAL_MEMORY=1MB -sTOTAL_STACK=128KB \
	-sEXPORTED_FUNCTIONS=_malloc,_free
NATIVE_FLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

.PHONY: all deps build wasm native ts example demo test test-only fuzz bench clean

all: build

deps:
	@bash build/ensure-deps.sh

build: wasm native ts example

wasm: $(WASM)
$(WASM): $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(OUT)
	@echo "== building the wasm core ($(words $(CORE_SRC)) C files) -> $@"
	$(EMCC) $(WASM_FLAGS) $(CORE_SRC) -o $@

native: $(FIXTURES) $(ORACLES) $(FUZZERS) $(BENCH_NATIVE) $(BENCH_LOOPS)

$(OUT)/native/fixtures/%.so: test/fixtures/%.c $(wildcard test/fixtures/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(NATIVE_FLAGS) -O2 -fPIC -shared -Itest/fixtures $(P11KIT_CFLAGS) $< -o $@ -lpthread

$(OUT)/native/oracle/%: test/oracle/%.c
	@mkdir -p $(dir $@)
	$(CC) $(NATIVE_FLAGS) -O2 $(P11KIT_CFLAGS) $< -o $@ $(P11KIT_LIBS) -ldl

$(OUT)/native/bench/%: bench/native/%.c $(BENCH_LOOP_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(NATIVE_FLAGS) -O2 -Iwasm $(P11KIT_CFLAGS) $< -o $@ $(P11KIT_LIBS) -ldl

# The URI split (bench/native/uri-split.c) links the core's own sources, natively, as the wasm build compiles them.
$(OUT)/native/bench/uri-split: bench/native/uri-split.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(NATIVE_FLAGS) -O2 -DNDEBUG -Iwasm $(P11KIT_CFLAGS) $< $(CORE_SRC) -o $@ $(P11KIT_LIBS)

# Native loops a bench calls in its own process through koffi (C driven from C, timed in C).
$(OUT)/native/bench/lib%.so: bench/native/loops/%.c
	@mkdir -p $(dir $@)
	$(CC) $(NATIVE_FLAGS) -O2 -fPIC -shared $(P11KIT_CFLAGS) $< -o $@ $(P11KIT_LIBS) -ldl

# The same core sources, natively, with AddressSanitizer and UBSan, under libFuzzer.
$(OUT)/native/fuzz/%: wasm/fuzz/%.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CLANG) $(NATIVE_FLAGS) -O1 $(SAN_FLAGS) -fsanitize=fuzzer -Iwasm $< $(CORE_SRC) -o $@

ts:
	@echo "== compiling TypeScript -> $(OUT)/lib"
	npx tsc -p tsconfig.json
	node build/cjs-types.mjs

# The Electron example's renderer bundle (esbuild), which the Chromium test loads.
example: ts
	@node examples/electron/build.mjs

demo: deps build
	@bash build/demo.sh

test: deps build test-only

test-only:
	@bash build/run-tests.sh

fuzz: $(FUZZERS)
	@bash build/run-fuzzers.sh

bench: deps build
	@bash build/run-bench.sh

clean:
	rm -rf $(OUT)
