# agent-tars-server -- see README.md. `make run` builds and starts the server, `make test` runs
# every test. SANITIZE=1 builds into build-asan/ with AddressSanitizer + UBSan.

CC      ?= gcc
PKGS    := libuv libcurl sqlite3 jansson libcrypto
DEB_PKGS := gcc make libssl-dev libuv1-dev node-llhttp libwslay-dev libcurl4-openssl-dev \
            libsqlite3-dev libjansson-dev libcmocka-dev pkg-config bubblewrap
# What the tests need beyond the build: node (with npm) for the black-box suites, the sqlite3 CLI to
# build original-schema databases, chromium for the web UI and browser tests, prometheus (promtool
# and the server) for the metrics tests.
TEST_DEB_PKGS := nodejs sqlite3 chromium util-linux prometheus
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -MMD -MP
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lwslay -lm
# llhttp (Node's HTTP parser) ships as C sources in Debian's node-llhttp: compiled from there
# into the build directory, never copied into the repo. Strict mode; see src/http/parse.c.
LLHTTP_DIR  ?= /usr/share/llhttp
LLHTTP_INC  ?= /usr/share/include/llhttp
LLHTTP_SRCS := $(LLHTTP_DIR)/api.c $(LLHTTP_DIR)/http.c $(LLHTTP_DIR)/llhttp.c
CPPFLAGS += -Isrc -I$(LLHTTP_INC) -DLLHTTP_STRICT_MODE=1 $(shell pkg-config --cflags $(PKGS) 2>/dev/null)

ifeq ($(SANITIZE),1)
BUILD   := build-asan
CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
BUILD   := build
endif
ifeq ($(WERROR),1)
CFLAGS  += -Werror
endif

SRCS     := $(sort $(wildcard src/*/*.c)) src/config.c
LLHTTP_OBJS := $(LLHTTP_SRCS:$(LLHTTP_DIR)/%.c=$(BUILD)/llhttp/%.o)
LIB_OBJS := $(SRCS:%.c=$(BUILD)/%.o) $(LLHTTP_OBJS)
MAIN_OBJ := $(BUILD)/src/main.o
BIN      := $(BUILD)/agent-tars-server
LIB      := $(BUILD)/libtars.a
# The command helper of run_command without a sandbox (src/command_helper.c), libc only: found
# next to the server binary, which otherwise runs itself as the helper (slower to start).
HELPER      := $(BUILD)/agent-tars-command-helper
HELPER_OBJS := $(BUILD)/src/command_helper.o $(BUILD)/src/tools/helper.o

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.DEFAULT_GOAL := all

# The web UI is embedded with .incbin: the object depends on the files it includes.
$(BUILD)/src/ui/assets.o: $(wildcard ui/*)

# Build information for GET /api/v1/version (only v1.o depends on it).
GIT_HASH   := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BUILD_TIME := $(shell date +%s000)
$(BUILD)/src/api/v1.o $(BUILD)/src/api/metrics.o: CPPFLAGS += -DTARS_GIT_HASH='"$(GIT_HASH)"' -DTARS_BUILD_TIME_MS=$(BUILD_TIME)LL

.PHONY: all run test unit integration check fmt clean deps bench bench-sio bench-sandbox fuzz fuzz-build
all: $(BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# Generated code: built with our flags but without -Werror/-Wextra noise it does not control.
$(BUILD)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(filter-out -Werror -Wextra,$(CFLAGS)) -w -c $< -o $@

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(MAIN_OBJ) $(LIB) | $(HELPER)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(HELPER): $(HELPER_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) -lcmocka

# libFuzzer drivers for the pure parsers (tests/fuzz/README.md), built with Debian's clang into
# $(FUZZ_BUILD). `make fuzz` runs each for FUZZ_SECONDS on its seed corpus and dictionary and fails
# on the first crash, leak or sanitizer report; new inputs go to $(FUZZ_BUILD)/corpus/<target>.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD   ?= $(BUILD)-fuzz
FUZZ_FLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined
FUZZ_SRCS    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_OBJS    := $(SRCS:%.c=$(FUZZ_BUILD)/%.o) $(LLHTTP_SRCS:$(LLHTTP_DIR)/%.c=$(FUZZ_BUILD)/llhttp/%.o)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) -std=c11 -D_GNU_SOURCE -MMD -MP $(FUZZ_FLAGS) \
	  -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) -w $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/libtars-fuzz.a: $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_BUILD)/libtars-fuzz.a
	$(FUZZ_CC) $(CPPFLAGS) -Itests/fuzz -std=c11 -D_GNU_SOURCE $(FUZZ_FLAGS) -fsanitize=fuzzer \
	  -o $@ $< $(FUZZ_BUILD)/libtars-fuzz.a $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@for b in $(FUZZ_BINS); do \
	  t=$$(basename $$b); seeds=tests/fuzz/corpus/$${t#fuzz_}; dict=tests/fuzz/$${t#fuzz_}.dict; \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	  echo "== $$t ($(FUZZ_SECONDS) s)"; \
	  ./$$b -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
	    -artifact_prefix=$(FUZZ_BUILD)/ $$( [ -f $$dict ] && echo -dict=$$dict ) \
	    $(FUZZ_BUILD)/corpus/$$t $$( [ -d $$seeds ] && echo $$seeds ) \
	    2>$(FUZZ_BUILD)/$$t.log || { tail -60 $(FUZZ_BUILD)/$$t.log; echo "$$t: FAILED"; exit 1; }; \
	  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" $(FUZZ_BUILD)/$$t.log; \
	done

# Installs the Debian packages the build and tests need when one is missing (as root), or
# prints the exact command to run.
deps:
	@missing=""; for p in $(DEB_PKGS) $(EXTRA_DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    (apt-get install -y -q $$missing || (apt-get update -q && apt-get install -y -q $$missing)) >/dev/null || exit 1; \
	  else \
	    echo "missing packages; run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

run: deps
	@$(MAKE) --no-print-directory $(BIN)
	./$(BIN) $(ARGS)

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do \
	  echo "== $$t"; ./$$t || fail=1; \
	done; exit $$fail

integration: $(BIN)
	TARS_BIN=$(abspath $(BIN)) node --test --test-concurrency=1 tests/integration/

# npm packages of the tests (socket.io-client, playwright-core, MCP servers), from the lock file.
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund

test:
	@$(MAKE) --no-print-directory deps EXTRA_DEB_PKGS="$(TEST_DEB_PKGS)"
	@$(MAKE) --no-print-directory node_modules/.package-lock.json
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

bench: $(BIN)
	BENCH_STORAGE=memory TARS_BIN=$(abspath $(BIN)) node bench/load.mjs
	BENCH_STORAGE=sqlite TARS_BIN=$(abspath $(BIN)) node bench/load.mjs

# Socket.IO fan-out: 100 and 1000 WebSocket clients on one session (needs `npm ci`).
bench-sio: $(BIN)
	TARS_BIN=$(abspath $(BIN)) node bench/sio-fanout.mjs

# GET /metrics with 10,000 sessions loaded: size and time of a scrape (bench/metrics.mjs).
bench-metrics: $(BIN)
	TARS_BIN=$(abspath $(BIN)) node bench/metrics.mjs

# Start-up cost of a command: bubblewrap sandbox vs the unsandboxed helper (bench/sandbox.mjs).
bench-sandbox: $(BIN)
	TARS_BIN=$(abspath $(BIN)) node bench/sandbox.mjs

# House rules (STYLE.md 2.9): banned calls, raw malloc/free outside core/xalloc.c.
check:
	@! grep -nE '\b(sprintf|strcpy|strcat|strtok|atoi|atol|gets|system|popen)\s*\(' src/*/*.c src/*.c
	@! grep -nE '\b(malloc|free|calloc|realloc)\s*\(' $(filter-out src/core/xalloc.c,$(SRCS)) src/main.c | grep -v json_set_alloc_funcs

fmt:
	clang-format -i src/*.c src/*/*.c src/*/*.h tests/unit/*.c

clean:
	rm -rf build build-asan build-fuzz build-asan-fuzz

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(HELPER_OBJS:.o=.d) $(FUZZ_OBJS:.o=.d)
