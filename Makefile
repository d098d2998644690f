# The two commands of the README: `make run` and `make test`. Both install what is missing
# (Debian packages, via ci/install-deps.sh) and build first.
BUILD_DIR ?= build/release
JOBS ?= $(shell nproc)
# Tests at twice as many at once as there are cores: most of the suite waits (on sockets, the
# scenarios' delays, the mailers' timeouts), and at one per core it kept 0.4 of two cores busy.
# The release pass took 209 s at -j 2 and 134 s at -j 4; the tests that time or load the
# machine are marked RUN_SERIAL in tests/integration/CMakeLists.txt and run alone either way.
TEST_JOBS ?= $(shell echo $$(( $$(nproc) * 2 )))
CMAKE_FLAGS ?=

.PHONY: run test install deps run-deps build clean format check-format sanitize fuzz

run: run-deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j $(JOBS) --target smtpfault
	./$(BUILD_DIR)/smtpfault serve $(ARGS)

test: deps build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(TEST_JOBS)

# The binary into $(PREFIX)/bin (default /usr/local/bin), so that `smtpfault` is on PATH.
PREFIX ?= /usr/local
install: run-deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j $(JOBS) --target smtpfault
	cmake --install $(BUILD_DIR) --prefix $(PREFIX)

# What building and trying the mock needs (the compiler, the libraries, swaks, curl ...);
# `deps` adds what only the tests and benchmarks use (aiosmtpd, Postfix's smtp-sink, ...).
run-deps:
	./ci/install-deps.sh

deps:
	./ci/install-deps.sh --test

build:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j $(JOBS)

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

check-format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run -Werror

clean:
	rm -rf build

# ThreadSanitizer over the integration tests that run many sessions on several threads (only
# the server is built for it), then ASan+UBSan over the whole suite.
# -Og and line tables only: sanitizer reports keep file:line, and the builds stay quick. -Og
# compiles about as fast as -O0 (one batch of the net library: 48 s, 47 s at -O0, 80 s at -O1);
# at -O0 two of the tests' timing bounds fail under ASan, at -Og the whole suite passes. The TSan
# binary builds in 118 s against 164 s at -O1.
SAN_CXXFLAGS ?= -Og -g1
SAN_DIR ?= build/sanitize
# Extra ctest flags for the ASan pass (a sanitizer report fails the run): the benchmark
# scripts' checks run in `make test`, and serially, so they are left out here.
SAN_CTEST_FLAGS ?= -LE benchmark
TSAN_DIR ?= build/tsan
sanitize: deps
	cmake -S . -B $(SAN_DIR) -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="$(SAN_CXXFLAGS)" \
	  -DSMTPFAULT_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(SAN_DIR) -j $(JOBS)
	cmake -S . -B $(TSAN_DIR) -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="$(SAN_CXXFLAGS)" \
	  -DSMTPFAULT_TSAN=ON $(CMAKE_FLAGS)
	cmake --build $(TSAN_DIR) -j $(JOBS) --target smtpfault
	TSAN_OPTIONS=halt_on_error=1 ctest --test-dir $(TSAN_DIR) --output-on-failure -j $(TEST_JOBS) -L threads
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(SAN_DIR) --output-on-failure -j $(TEST_JOBS) $(SAN_CTEST_FLAGS)

# libFuzzer (clang) on every target for FUZZ_SECONDS each; new inputs land in build/fuzz/corpus.
FUZZ_DIR ?= build/fuzz
FUZZ_SECONDS ?= 60
fuzz: deps
	cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
	  -DSMTPFAULT_FUZZ_ONLY=ON -DSMTPFAULT_SANITIZE=ON
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target fuzz_targets
	./ci/fuzz.sh $(FUZZ_DIR) $(FUZZ_SECONDS)
