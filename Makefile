# Thin wrapper over CMake. `make run` builds and runs the demo, `make test`
# builds and runs every test. Build trees: build/ (RelWithDebInfo),
# build-asan/ (ASan+UBSan), build-tsan/ (TSan), build-valgrind/,
# build-release/ (benchmarks), build-aarch64/ (cross, run under qemu-user),
# build-musl/ (musl libc).
CMAKE      ?= cmake
CTEST      ?= ctest
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX     ?= /usr/local
CTEST_ARGS ?= --output-on-failure -j$(JOBS)

.PHONY: all build run test test-sanitize test-asan test-tsan test-valgrind test-cross test-musl \
	bench fuzz install clean

all: build

build:
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(CMAKE) --build build -j$(JOBS)

run: build
	./build/examples/seed/seed

test: build
	cd build && $(CTEST) $(CTEST_ARGS)

test-sanitize: test-asan test-tsan

test-asan:
	@$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHERD_SANITIZE=address \
		-DHERD_BUILD_BENCH=OFF >/dev/null
	@$(CMAKE) --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(CTEST) $(CTEST_ARGS)

test-tsan:
	@$(CMAKE) -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DHERD_SANITIZE=thread \
		-DHERD_BUILD_BENCH=OFF >/dev/null
	@$(CMAKE) --build build-tsan -j$(JOBS)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		$(CTEST) $(CTEST_ARGS)

# Every test under Valgrind's memcheck (slow; not part of `make test`), but
# the long ones, and those Valgrind cannot host: stack overflows (Valgrind
# catches them itself), measurements of time (Valgrind runs 50x slower),
# and descriptor limits (Valgrind keeps descriptors of its own at the top
# and refuses to lower RLIMIT_NOFILE), and the herd command's cases that
# measure the memory or the /tmp entries of a process the test forks (a
# copy of Valgrind until it execs herd; Valgrind keeps pipes in /tmp).
VALGRIND_SKIP = stack[.]overflow|budget[.]|cli-run[.](output_big|limit_nofile|kill9_leaves_no_files)|idle_workers_sleep|sleep_many_order|million|sleepers_deadline_order|sleepers_cost_no_cpu|fd_budget_wait|low_fd_limit|child_gets_only_its_fds
test-valgrind:
	@$(CMAKE) -S . -B build-valgrind -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERD_BUILD_BENCH=OFF \
		"-DHERD_TEST_WRAPPER=valgrind;-q;--error-exitcode=99;--leak-check=full;--errors-for-leak-kinds=definite" \
		"-DHERD_TEST_WRAPPER_SKIP=$(VALGRIND_SKIP)" >/dev/null
	@$(CMAKE) --build build-valgrind -j$(JOBS)
	cd build-valgrind && $(CTEST) $(CTEST_ARGS)

# The library and every test for 64-bit ARM, built with Debian's
# gcc-aarch64-linux-gnu (and libc6-dev-arm64-cross) and run under qemu-user
# (qemu-aarch64, which CTest prefixes to each test: no binfmt_misc needed).
# Cases that cannot pass under qemu-user skip and say why.
test-cross:
	@$(CMAKE) -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERD_BUILD_BENCH=OFF >/dev/null
	@$(CMAKE) --build build-aarch64 -j$(JOBS)
	cd build-aarch64 && $(CTEST) $(CTEST_ARGS)

# The library and every test built with musl-gcc (Debian's musl-tools), a C
# library other than glibc: no kernel headers there, and less forgiving.
MUSL_CC ?= musl-gcc
test-musl:
	@$(CMAKE) -S . -B build-musl -DCMAKE_C_COMPILER=$(MUSL_CC) \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERD_BUILD_BENCH=OFF >/dev/null
	@$(CMAKE) --build build-musl -j$(JOBS)
	cd build-musl && $(CTEST) $(CTEST_ARGS)

# Prints one line per benchmark on stdout; the build and details go to stderr.
# HERD_PEERS_DIR=dir: where the peer libraries' sources are (default
# ../shared/peers; bench/CMakeLists.txt).
bench:
	@$(CMAKE) -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DHERD_BUILD_TESTS=OFF \
		$(if $(HERD_PEERS_DIR),"-DHERD_PEERS_DIR=$(abspath $(HERD_PEERS_DIR))") >&2
	@$(CMAKE) --build build-release -j$(JOBS) >&2
	@./bench/run.sh build-release

# libFuzzer targets (needs clang and its runtime, libclang-rt-14-dev on
# Debian 12), each run FUZZ_SECONDS from its seed corpus; a crash fails.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
fuzz:
	@mkdir -p build-fuzz/corpus/template
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-D_GNU_SOURCE -Iinclude fuzz/fuzz-template.c cli/template.c cli/util.c \
		-o build-fuzz/fuzz-template
	cd build-fuzz && ./fuzz-template -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		-print_final_stats=1 corpus/template ../fuzz/corpus/template

install: build
	$(CMAKE) --install build --prefix $(PREFIX)

clean:
	rm -rf build build-asan build-tsan build-release build-valgrind build-fuzz build-aarch64 \
		build-musl
