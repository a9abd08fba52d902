#!/usr/bin/env bash
# Runs Halo's whole test suite (installing missing Debian packages first).
# Tests that need the real datasets look for ../shared/datasets beside the repository and skip where it is absent;
# the MPI tests run the built `halo` under mpirun (OpenMPI is installed by scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
bash scripts/install-deps.sh
# Optimised builds: the numerical and multi-rank tests run several times faster than in a debug build, which
# more than pays for the longer compile. `-enable-testing` lets tests see internal symbols (`@testable`).
# The end-to-end tests launch the halo executable, so everything is built (not just the test bundle) first.
# A build folder of its own, so the demo's build for this CPU and the tests' build do not evict each other.
# Package.swift turns Swift's run-time exclusivity checks off in release builds (they cost in the hot loops); the
# tests turn them back on, so an overlapping access (e.g. reading a class's property while it is borrowed
# mutably) traps here instead of passing silently.
build=(-c release -Xswiftc -enable-testing -Xswiftc -enforce-exclusivity=checked --scratch-path .build-tests)
swift build "${build[@]}" --build-tests
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
swift test "${build[@]}" --skip-build --disable-swift-testing "$@" 2>&1 | tee "$log" || status=$?
# The example package (Examples/TrainWithHalo) depends on this repository by path and trains through the library:
# it is built and run as a user would, and fails if the model learns nothing.
example=ok
if [ $# -eq 0 ]; then
  (cd Examples/TrainWithHalo && swift build -c release --scratch-path ../../.build-example \
     && ../../.build-example/release/TrainWithHalo) || { example=failed; status=1; }
fi
# One plain closing line for whoever reads the log last: the XCTest totals of the whole run.
# XCTest prints e.g. "Executed 12 tests, with 1 test skipped and 0 failures (0 unexpected)".
summary=$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with " "$log" | tail -n 1 || true)
if [ -n "$summary" ]; then
  total=$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$summary")
  failed=$(sed -E 's/.* ([0-9]+) failures?.*/\1/' <<<"$summary")
  skipped=0
  grep -qE "[0-9]+ tests? skipped" <<<"$summary" && skipped=$(sed -E 's/.* ([0-9]+) tests? skipped.*/\1/' <<<"$summary")
  echo "$((total - failed - skipped)) passed, $failed failed, $skipped skipped"
  [ $# -eq 0 ] && echo "example package (Examples/TrainWithHalo): $example"
fi
exit "$status"
