# sluice - build, test, fuzz.
#
#   make            build ./sluice (release: -O2 -g, warnings are errors)
#   make demo       deps + build, then the reference job on generated events
#                   with a local redis-server and the embedded broker
#   make deps       install missing Debian packages (apt-get; sudo when not root)
#   make check      deps + build + unit and integration tests, plain and
#                   under AddressSanitizer + UndefinedBehaviorSanitizer
#   make asan       the sanitizer build only (build/asan/)
#   make fuzz       libFuzzer on the job-file loader, the record decoder and
#                   engine, checkpoint restore, the JSON validator against
#                   jansson, the shard commit metadata parser and the
#                   repartition header parser, and fmt_double() against
#                   the printf search it replaces
#                   (FUZZ_SECONDS each, default 600)
#   make bench      the reference job over 1,000,000 generated events, checkpoint
#                   and restore at 1 M keys, and the matrix of 100 k, 1 M and
#                   10 M keys by ~2 and ~0.1 results per event (tests/bench/matrix.sh)
#   make bench-e2e  end to end against kcat, the Redis sink against Redis's
#                   own limit (build/release/redis_shape), the load shapes,
#                   the input read directly and through a repartition topic
#   make bench-instances  1, 2 and 3 instances over one topic: throughput,
#                   and the hand-off time of a partition that moves
#   make soak       the crash test with 20 kills per partition layout, then
#                   3 instances under random kills and stops (SOAK_MINUTES)
#   make soak-instances  the latter alone
#   make install    binary, systemd unit, man page, docs and the example job
#                   (PREFIX=/usr/local, SYSCONFDIR=/etc, DESTDIR for staging)
#   make uninstall  the same, except /etc/sluice and the state
#   make clean

CC      ?= cc
PKG_LIBS := yaml-0.1 libxxhash libzstd libuv rdkafka hiredis libsystemd libcurl openssl
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CSTD    := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
CFLAGS  ?= -O2 -g
ALL_CFLAGS = $(CSTD) $(CFLAGS) $(WARN) $(shell pkg-config --cflags $(PKG_LIBS)) -MMD -MP
LDLIBS_ALL = $(shell pkg-config --libs $(PKG_LIBS)) -lhttp_parser -lm
CHECK_CFLAGS = $(shell pkg-config --cflags check)
CHECK_LIBS   = $(shell pkg-config --libs check)
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=all

# Debian packages the build, the tests and the later stages need
# (libjansson-dev: the tests' reference JSON parser, never linked into sluice;
# nodejs and npm: s3rver, the tests' S3-compatible server, below; python3:
# tests/tools/s3_sigcheck.py, the tests' signature-checking S3 server, and
# tests/tools/grafana_check.py; prometheus: promtool, and the Prometheus that
# t_grafana.sh runs the dashboard's queries on; libssl-dev: the Redis sink's
# TLS; openssl: the TLS test's certificates; chromium and a font: the status
# page's browser test, driven by playwright-core from the npm registry, below).
PKGS := pkg-config libyaml-dev libuv1-dev librdkafka-dev libhiredis-dev check \
        libjsmn-dev libxxhash-dev libzstd-dev libsystemd-dev libhttp-parser-dev redis-server redis-tools kcat bc \
        prometheus systemd curl man-db groff-base libjansson-dev libcurl4-openssl-dev nodejs npm \
        python3 libssl-dev openssl chromium fonts-dejavu-core

# s3rver from the npm registry, pinned, for tests/integration/t_store.sh:
# installed into build/npm (never globally) when missing.
S3RVER_VERSION := 3.7.1
S3RVER := build/npm/node_modules/.bin/s3rver

CORE_SRC := $(wildcard config/*.c engine/*.c connectors/*.c)
CMD_SRC  := $(wildcard cmd/*.c)
TEST_SRC := $(wildcard tests/unit/*.c tests/ref/*.c)

B  := build/release
BA := build/asan

core_objs = $(patsubst %.c,$(1)/%.o,$(CORE_SRC))
cmd_objs  = $(patsubst %.c,$(1)/%.o,$(CMD_SRC))
test_objs = $(patsubst %.c,$(1)/%.o,$(TEST_SRC))
# the modules of cmd/ the unit tests reach (everything else of cmd/ needs the run)
UNIT_CMD_SRC := cmd/shardmeta.c cmd/checkpoint.c cmd/graph.c cmd/http.c
unit_cmd_objs = $(patsubst %.c,$(1)/%.o,$(UNIT_CMD_SRC))

.PHONY: all demo deps check test asan asan-test unit integration fuzz fuzz-deps fuzz-config \
        fuzz-record fuzz-ckpt fuzz-json fuzz-shardmeta fuzz-rpheader fuzz-double bench bench-e2e bench-instances soak \
        soak-instances install uninstall clean
.DEFAULT_GOAL := all

all: sluice

sluice: $(call core_objs,$(B)) $(call cmd_objs,$(B))
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

$(B)/unit_tests: $(call core_objs,$(B)) $(call unit_cmd_objs,$(B)) $(call test_objs,$(B))
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_ALL) $(CHECK_LIBS)

$(B)/ref_job: $(call core_objs,$(B)) $(B)/tests/tools/ref_job.o $(B)/tests/ref/reference.o
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(B)/notify_listen: $(B)/tests/tools/notify_listen.o
	$(CC) $(CFLAGS) -o $@ $^

$(B)/store_tool: $(call core_objs,$(B)) $(B)/tests/tools/store_tool.o
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(S3RVER):
	@command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory PKGS="nodejs npm" deps
	@mkdir -p build/npm
	npm install --prefix build/npm --no-audit --no-fund --no-save s3rver@$(S3RVER_VERSION)

# playwright-core from the npm registry, pinned, for tests/integration/t_status_page.sh:
# it drives Debian's chromium (it downloads no browser of its own); in build/pw.
PLAYWRIGHT_VERSION := 1.49.1
PLAYWRIGHT := build/pw/node_modules/playwright-core/package.json

$(PLAYWRIGHT):
	@command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory PKGS="nodejs npm" deps
	@mkdir -p build/pw
	npm install --prefix build/pw --no-audit --no-fund --no-save playwright-core@$(PLAYWRIGHT_VERSION)

$(B)/group_offsets: $(B)/tests/tools/group_offsets.o
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(B)/http_abuse: $(B)/tests/tools/http_abuse.o
	$(CC) $(CFLAGS) -o $@ $^

# --- sanitizer build -------------------------------------------------------

# each fuzz target without libFuzzer, to replay inputs (see tests/fuzz/replay.c)
REPLAYS := $(BA)/replay_config $(BA)/replay_record $(BA)/replay_ckpt $(BA)/replay_json \
           $(BA)/replay_shardmeta $(BA)/replay_rpheader

asan: $(BA)/sluice $(BA)/unit_tests $(REPLAYS)

$(BA)/sluice: $(call core_objs,$(BA)) $(call cmd_objs,$(BA))
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BA)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(ASAN_FLAGS) $(WARN) $(shell pkg-config --cflags $(PKG_LIBS)) -MMD -MP -c -o $@ $<

$(BA)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(ASAN_FLAGS) $(WARN) $(shell pkg-config --cflags $(PKG_LIBS)) $(CHECK_CFLAGS) -MMD -MP -c -o $@ $<

$(BA)/unit_tests: $(call core_objs,$(BA)) $(call unit_cmd_objs,$(BA)) $(call test_objs,$(BA))
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(LDLIBS_ALL) $(CHECK_LIBS)

$(BA)/store_tool: $(call core_objs,$(BA)) $(BA)/tests/tools/store_tool.o
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BA)/replay_%: $(call core_objs,$(BA)) $(BA)/tests/fuzz/fuzz_%.o $(BA)/tests/fuzz/replay.o
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BA)/replay_json: $(BA)/engine/json.o $(BA)/tests/fuzz/fuzz_json.o $(BA)/tests/fuzz/replay.o
	$(CC) $(ASAN_FLAGS) -o $@ $^ -ljansson

$(BA)/replay_shardmeta: $(BA)/cmd/shardmeta.o $(BA)/config/store_url.o \
                        $(BA)/tests/fuzz/fuzz_shardmeta.o $(BA)/tests/fuzz/replay.o
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BA)/replay_rpheader: $(BA)/connectors/rp_header.o $(BA)/engine/value.o \
                       $(BA)/tests/fuzz/fuzz_rpheader.o $(BA)/tests/fuzz/replay.o
	$(CC) $(ASAN_FLAGS) -o $@ $^ -lxxhash -lm

# --- tests -----------------------------------------------------------------

ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

unit: $(B)/unit_tests
	$(B)/unit_tests

TOOLS_ENV = REF_JOB=$(B)/ref_job NOTIFY_LISTEN=$(B)/notify_listen STORE_TOOL=$(B)/store_tool \
            S3RVER=$(S3RVER) GROUP_OFFSETS=$(B)/group_offsets HTTP_ABUSE=$(B)/http_abuse \
            PLAYWRIGHT=build/pw/node_modules/playwright-core

# Integration tests mostly wait (brokers, rebalances, servers), so make
# check runs IT_JOBS of them at a time; each has its own ports and files.
IT_JOBS ?= 2

integration: sluice $(B)/ref_job $(B)/notify_listen $(B)/store_tool $(S3RVER) $(B)/group_offsets \
             $(B)/http_abuse $(PLAYWRIGHT)
	JOBS=$(IT_JOBS) SLUICE=./sluice $(TOOLS_ENV) tests/integration/run.sh

test: unit integration

asan-test: asan $(B)/ref_job $(B)/notify_listen $(BA)/store_tool $(S3RVER) $(B)/group_offsets \
           $(B)/http_abuse $(PLAYWRIGHT)
	$(ASAN_ENV) $(BA)/unit_tests
	$(ASAN_ENV) $(BA)/replay_config tests/bad/*.yaml tests/good/*.yaml >/dev/null
	$(ASAN_ENV) $(BA)/replay_record tests/fuzz/records/* >/dev/null
	$(ASAN_ENV) $(BA)/replay_ckpt tests/fuzz/regress/ckpt/*
	$(ASAN_ENV) $(BA)/replay_json tests/json/cases/* $(wildcard tests/fuzz/regress/json/*) >/dev/null
	$(ASAN_ENV) $(BA)/replay_shardmeta tests/fuzz/shardmeta/* $(wildcard tests/fuzz/regress/shardmeta/*) >/dev/null
	$(ASAN_ENV) $(BA)/replay_rpheader tests/fuzz/rpheader/* $(wildcard tests/fuzz/regress/rpheader/*) >/dev/null
	$(ASAN_ENV) JOBS=$(IT_JOBS) CRASH_KILLS=3 SLUICE=$(BA)/sluice $(TOOLS_ENV) \
	  STORE_TOOL=$(BA)/store_tool tests/integration/run.sh

demo: deps
	$(MAKE) all
	packaging/demo.sh

check: deps
	$(MAKE) all
	$(MAKE) test
	$(MAKE) asan-test

deps:
	@missing=""; \
	provided=$$(dpkg-query -W -f='$${db:Status-Abbrev}$${Provides}\n' 2>/dev/null | \
	  sed -n 's/^ii *//p' | tr ',' '\n' | sed 's/^ *//; s/ .*//'); \
	for p in $(PKGS); do \
	  dpkg -s $$p >/dev/null 2>&1 || echo "$$provided" | grep -qx "$$p" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $$missing; \
	fi

bench-e2e: sluice $(B)/redis_shape $(B)/http_abuse $(PLAYWRIGHT)
	@echo "--- 1. the reference job against kcat reading the same topic:"
	tests/bench/e2e.sh
	@echo "--- 2. the Redis sink against redis-server's own limit for the same writes:"
	tests/bench/redis_limit.sh
	@echo "--- 3. the two load shapes of issue 16, marginal, against kcat:"
	tests/bench/shapes.sh
	@echo "--- 4. plain TCP and TLS to one redis-server, interleaved:"
	TLS=1 EVENTS=300000 ROUNDS=2 tests/bench/redis_write.sh
	@echo "--- 5. a three-primary Redis Cluster against one redis-server:"
	tests/bench/cluster.sh
	@echo "--- 6. freshness under 50,000 events/s in real time, coalescing on and off:"
	tests/bench/freshness.sh
	@echo "--- 7. the HTTP endpoint: the status page's size, requests/s, a browser on the page:"
	tests/bench/status_poll.sh
	@echo "--- 7. the reference job over events 10 ms apart, coalescing on and off:"
	tests/bench/coalesce.sh
	@echo "--- 8. the reference job read directly and through a repartition topic (issue 17):"
	tests/bench/repartition.sh

bench-instances: sluice
	@echo "--- aggregate throughput of 1, 2 and 3 instances (engine alone, results to /dev/null):"
	tests/bench/instances.sh
	@echo "--- hand-off: from the revocation on one instance to the first record on the other:"
	tests/bench/handoff.sh

soak: sluice $(B)/ref_job soak-instances
	VERBOSE=1 CRASH_KILLS=$${CRASH_KILLS:-20} SLUICE=./sluice $(TOOLS_ENV) \
	  tests/integration/run.sh tests/integration/t_crash.sh

# 3 instances, SOAK_MINUTES (default 10) of kills, stops and restarts
soak-instances: sluice
	VERBOSE=1 SLUICE=./sluice tests/integration/run.sh tests/integration/soak_instances.sh

# --- fuzzing (clang libFuzzer; not part of check) ----------------------------

FUZZ_SECONDS ?= 600
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

fuzz-deps:
	@if ! command -v clang >/dev/null 2>&1; then $(MAKE) --no-print-directory PKGS=clang deps; fi
	@v=$$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1); \
	  $(MAKE) --no-print-directory PKGS="libclang-rt-$$v-dev" deps

# The loader finds connector types in connectors/registry.c (a link-time
# registry, config/conntype.h), so whatever links config/ links the
# connectors, and with them the engine.
FUZZ_SRC = $(CORE_SRC)
FUZZ_HDR = $(wildcard config/*.h engine/*.h connectors/*.h)

build/fuzz/fuzz_config: tests/fuzz/fuzz_config.c $(FUZZ_SRC) $(FUZZ_HDR)
	@mkdir -p $(dir $@)
	clang $(CSTD) $(FUZZ_FLAGS) $(shell pkg-config --cflags $(PKG_LIBS)) -o $@ \
	  tests/fuzz/fuzz_config.c $(FUZZ_SRC) $(LDLIBS_ALL)

build/fuzz/fuzz_record: tests/fuzz/fuzz_record.c $(FUZZ_SRC) $(FUZZ_HDR)
	@mkdir -p $(dir $@)
	clang $(CSTD) $(FUZZ_FLAGS) $(shell pkg-config --cflags $(PKG_LIBS)) -o $@ \
	  tests/fuzz/fuzz_record.c $(FUZZ_SRC) $(LDLIBS_ALL)

build/fuzz/fuzz_ckpt: tests/fuzz/fuzz_ckpt.c $(FUZZ_SRC) $(FUZZ_HDR)
	@mkdir -p $(dir $@)
	clang $(CSTD) $(FUZZ_FLAGS) $(shell pkg-config --cflags $(PKG_LIBS)) -o $@ \
	  tests/fuzz/fuzz_ckpt.c $(FUZZ_SRC) $(LDLIBS_ALL)

build/fuzz/fuzz_json: tests/fuzz/fuzz_json.c engine/json.c engine/json.h
	@mkdir -p $(dir $@)
	clang $(CSTD) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_json.c engine/json.c -ljansson

fuzz: fuzz-config fuzz-record fuzz-ckpt fuzz-json fuzz-shardmeta fuzz-rpheader fuzz-double

build/fuzz/fuzz_double: tests/fuzz/fuzz_double.c tests/fuzz/fmt_double_ref.h engine/value.c \
                        engine/value.h
	@mkdir -p $(dir $@)
	clang $(CSTD) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_double.c engine/value.c -lm

# fmt_double() against the printf search it replaces; findings go to build/fuzz/
fuzz-double: fuzz-deps build/fuzz/fuzz_double
	build/fuzz/fuzz_double -max_total_time=$(FUZZ_SECONDS) -max_len=256 \
	  -artifact_prefix=build/fuzz/

build/fuzz/fuzz_rpheader: tests/fuzz/fuzz_rpheader.c connectors/rp_header.c connectors/rp_header.h \
                          engine/value.c engine/value.h
	@mkdir -p $(dir $@)
	clang $(CSTD) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_rpheader.c connectors/rp_header.c \
	  engine/value.c -lxxhash -lm

# the repartition header parser; findings go to tests/fuzz/regress/rpheader/
fuzz-rpheader: fuzz-deps build/fuzz/fuzz_rpheader
	@mkdir -p build/fuzz/corpus-rpheader
	cp tests/fuzz/rpheader/* build/fuzz/corpus-rpheader/
	build/fuzz/fuzz_rpheader -max_total_time=$(FUZZ_SECONDS) -max_len=128 \
	  -dict=tests/fuzz/rpheader.dict -artifact_prefix=build/fuzz/ build/fuzz/corpus-rpheader

build/fuzz/fuzz_shardmeta: tests/fuzz/fuzz_shardmeta.c cmd/shardmeta.c cmd/shardmeta.h \
                           config/store_url.c config/store_url.h
	@mkdir -p $(dir $@)
	clang $(CSTD) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_shardmeta.c cmd/shardmeta.c \
	  config/store_url.c -lxxhash

# the shard commit metadata parser; findings go to tests/fuzz/regress/shardmeta/
fuzz-shardmeta: fuzz-deps build/fuzz/fuzz_shardmeta
	@mkdir -p build/fuzz/corpus-shardmeta
	cp tests/fuzz/shardmeta/* build/fuzz/corpus-shardmeta/
	build/fuzz/fuzz_shardmeta -max_total_time=$(FUZZ_SECONDS) -max_len=2048 \
	  -dict=tests/fuzz/shardmeta.dict -artifact_prefix=build/fuzz/ build/fuzz/corpus-shardmeta

# the validator against jansson; findings go to tests/fuzz/regress/json/
fuzz-json: fuzz-deps build/fuzz/fuzz_json
	@mkdir -p build/fuzz/corpus-json
	cp tests/json/cases/* build/fuzz/corpus-json/
	build/fuzz/fuzz_json -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	  -dict=tests/fuzz/json.dict -artifact_prefix=build/fuzz/ build/fuzz/corpus-json

fuzz-ckpt: fuzz-deps build/fuzz/fuzz_ckpt
	@mkdir -p build/fuzz/corpus-ckpt
	FUZZ_CKPT_WRITE_SEED=build/fuzz/corpus-ckpt/seed build/fuzz/fuzz_ckpt
	build/fuzz/fuzz_ckpt -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	  -artifact_prefix=build/fuzz/ build/fuzz/corpus-ckpt

fuzz-config: fuzz-deps build/fuzz/fuzz_config
	@mkdir -p build/fuzz/corpus-config
	cp tests/bad/*.yaml tests/good/*.yaml feature-pipeline.yaml build/fuzz/corpus-config/
	build/fuzz/fuzz_config -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
	  -dict=tests/fuzz/config.dict -artifact_prefix=build/fuzz/ \
	  build/fuzz/corpus-config

fuzz-record: fuzz-deps build/fuzz/fuzz_record sluice
	@mkdir -p build/fuzz/corpus-record
	./sluice gen --users 50 --events 40 --late-fraction 0.2 --invalid-fraction 0.2 \
	  --seed 7 | sed 's/^/0/' > build/fuzz/corpus-record/seed-iso
	cp tests/fuzz/records/* build/fuzz/corpus-record/
	build/fuzz/fuzz_record -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	  -dict=tests/fuzz/record.dict -artifact_prefix=build/fuzz/ \
	  build/fuzz/corpus-record

# --- benchmark (not part of check) -----------------------------------------

BENCH_EVENTS := build/bench/events-1m.jsonl

$(BENCH_EVENTS): sluice
	@mkdir -p $(dir $@)
	./sluice gen --users 100000 --events 1000000 --seed 1 > $@

build/bench/json_baseline: tests/bench/json_baseline.c engine/json.c engine/json.h
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O2 -g $(WARN) -o $@ tests/bench/json_baseline.c engine/json.c

# Redis's own limit for the sink's command shapes (tests/bench/redis_shape.c);
# the guard script is the sink's own, cut out of its source.
# the status page (GET /) as a C string: backslashes, quotes and '?' (no
# trigraphs) escaped, each line one literal
build/gen/status_page.inc: cmd/status_page.html
	@mkdir -p $(dir $@)
	{ echo 'static const char STATUS_PAGE[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; \
	  echo ';'; } > $@.tmp
	mv $@.tmp $@

$(B)/cmd/status_page.o $(BA)/cmd/status_page.o: build/gen/status_page.inc

$(B)/guard_script.h: connectors/redis_sink.c
	@mkdir -p $(dir $@)
	sed -n '/^static const char GUARD_SCRIPT\[\] =/,/;$$/p' $< > $@.tmp
	@grep -q 'return kept' $@.tmp || { echo "GUARD_SCRIPT not found in $<" >&2; rm -f $@.tmp; exit 1; }
	mv $@.tmp $@

$(B)/redis_shape: tests/bench/redis_shape.c $(B)/guard_script.h
	$(CC) $(CSTD) -O2 -g $(WARN) -I$(B) $(shell pkg-config --cflags hiredis) -o $@ $< \
	  $(shell pkg-config --libs hiredis) -lpthread

bench: sluice $(BENCH_EVENTS) build/bench/json_baseline
	@echo "machine: $$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), \
	$$(nproc) cores, $$(free -g | awk '/Mem:/ {print $$2}') GiB"
	@echo "--- bare JSON parsing of the same file, jsmn and sluice's scanner (the floor for any JSON job):"
	build/bench/json_baseline $(BENCH_EVENTS)
	@echo "--- sluice bench, reference job, best of 3:"
	./sluice bench -c feature-pipeline.yaml --input $(BENCH_EVENTS) --repeat 3
	@echo "--- sluice bench, keyed state without windows (reduce, detect, left join), best of 3:"
	./sluice bench -c tests/bench/keyed.yaml --input $(BENCH_EVENTS) --repeat 3
	@echo "--- checkpoint and restore of 1,000,000+ keys (14,000,000 events, 2,000,000 users):"
	@mkdir -p build/bench/ckpt
	./sluice gen --users 2000000 --events 14000000 --rate 9000 --seed 7 > build/bench/events-14m.jsonl
	./sluice bench -c feature-pipeline.yaml --input build/bench/events-14m.jsonl \
	  --checkpoint build/bench/ckpt | head -1
	rm -f build/bench/events-14m.jsonl
	@echo "--- restore of a shard of ~1,000,000 keys from a file:// shared store, by a new instance:"
	tests/bench/restore.sh
	@echo "--- the reference job at 100 k, 1 M and 10 M keys, ~2 and ~0.1 results per event (results encoded for Redis):"
	tests/bench/matrix.sh

# --- install -------------------------------------------------------------------

PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/sluice
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCS       := README.md docs/configuration.md docs/semantics.md docs/connectors.md \
              docs/state.md docs/operations.md docs/performance.md

# The job file and the secrets file are the operator's: never overwritten.
install: sluice
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/sluice
	install -m 0755 sluice $(DESTDIR)$(BINDIR)/sluice
	sed -e 's|/usr/local/bin/sluice|$(BINDIR)/sluice|g' -e 's|/etc/sluice|$(SYSCONFDIR)/sluice|g' \
	  packaging/systemd/sluice.service > $(DESTDIR)$(UNITDIR)/sluice.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/sluice.service
	install -m 0644 docs/sluice.1 $(DESTDIR)$(MANDIR)/man1/sluice.1
	install -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	install -D -m 0644 packaging/grafana/sluice.json $(DESTDIR)$(DOCDIR)/grafana/sluice.json
	install -m 0644 feature-pipeline.yaml $(DESTDIR)$(DOCDIR)/feature-pipeline.yaml
	[ -e $(DESTDIR)$(SYSCONFDIR)/sluice/feature-pipeline.yaml ] || \
	  install -m 0644 feature-pipeline.yaml $(DESTDIR)$(SYSCONFDIR)/sluice/feature-pipeline.yaml
	[ -e $(DESTDIR)$(SYSCONFDIR)/sluice/sluice.env ] || \
	  install -m 0600 packaging/sluice.env $(DESTDIR)$(SYSCONFDIR)/sluice/sluice.env

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/sluice $(DESTDIR)$(UNITDIR)/sluice.service \
	  $(DESTDIR)$(MANDIR)/man1/sluice.1
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build sluice

-include $(shell find build -name '*.d' 2>/dev/null)
