#!/usr/bin/env bash
# Runs Halo's whole test suite (installing missing Debian packages first).
# Tests that need the real datasets look for ../shared/datasets beside the repository and skip where it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
bash scripts/install-deps.sh
swift build --build-tests
swift test --skip-build "$@"
