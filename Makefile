# Rostfix: build, run a private instance, test.
#   make run    build and start a private instance on 127.0.0.1:$(RUN_PORT) (see README)
#   make stop   stop that instance
#   make test   install test peers (as root), lint, then every unit, end-to-end and package test
#   make lint   rustfmt --check, clippy -D warnings, unsafe and unimplemented-list checks

CARGO ?= cargo
PYTHON ?= /usr/bin/python3
RUN_PORT ?= 2525
export RUN_PORT

.PHONY: all build release run stop test test-unit test-e2e lint fmt bench clean

all: build

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --workspace --release

run: build
	scripts/run-dev.sh start

stop:
	scripts/run-dev.sh stop

# The package test runs on the debug build just tested (docs/packaging.md says why);
# `make test-package` runs it on the release build.
# Run by root, root-only Rust tests fail rather than skip when they cannot run
# (crates/testsupport).
test: build
	tests/setup-deps.sh
	$(MAKE) --no-print-directory lint
	if [ "$$(id -u)" = 0 ]; then export ROSTFIX_TESTS_NEED_ROOT=1; fi; $(CARGO) test --workspace
	$(MAKE) --no-print-directory test-e2e
	ROSTFIX_DEB_BINARIES=$${CARGO_TARGET_DIR:-$(CURDIR)/target}/debug tests/package/run.sh

test-unit:
	$(CARGO) test --workspace

# End-to-end tests boot real instances; they need root (master runs as root so chroot
# and privilege dropping really happen) and skip with that reason otherwise.
# PYTEST_TIMEOUT (pytest-timeout, ignored without it): a hung test fails after 15 min,
# its fixtures still stop what it started, instead of holding CI until its limit.
test-e2e: build
	PYTEST_TIMEOUT=900 $(PYTHON) -m pytest -v -p no:cacheprovider tests/e2e

lint:
	scripts/check-unsafe.sh
	scripts/check-unimplemented.sh
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# Benchmark (issue 7), never part of `make test`: as root; PEERS=postfix also installs
# and measures Debian's postfix. BENCH_MESSAGES=2000 BENCH_RUNS=1 for a quick look.
bench: release
	PEERS=$(PEERS) $(PYTHON) bench/bench.py

clean:
	scripts/run-dev.sh stop >/dev/null 2>&1 || true
	$(CARGO) clean
	rm -rf run

# Debian package (issue 6): target/deb/rostfix_VERSION_amd64.deb from the release
# binaries (packaging/build-deb.sh, debhelper); DEB_VERSION=0.1.0-2 make deb for another
# version. test-package needs root, debootstrap and network access to the Debian mirror:
# `make test` runs the same test on the debug build (docs/packaging.md says why).
.PHONY: deb test-package
# Its build dependencies first: installed when run as root (like `make test`'s peers),
# else the apt-get line to run is printed (packaging/build-deps.sh).
deb:
	packaging/build-deps.sh
	$(MAKE) --no-print-directory release
	packaging/build-deb.sh

test-package: release
	tests/package/run.sh

# Fuzzing (issue 3), never part of `make test` (which only replays fuzz/corpus through
# crates/smtpd/tests/fuzz_corpus.rs). Needs the nightly toolchain (rustup) and a C++
# compiler for libFuzzer; installs cargo-fuzz when missing. FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= command_parser data_machine bdat_chunks proxy_header mime_splitter milter_replies
.PHONY: fuzz
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	@rustup toolchain list | grep -q '^nightly' || { echo "make fuzz: needs 'rustup toolchain install nightly'" >&2; exit 1; }
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		cargo +nightly fuzz run $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done
