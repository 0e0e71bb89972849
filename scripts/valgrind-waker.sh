#!/usr/bin/env bash
# Runs the unit tests of the counting waker and the runtime waker slot
# (src/registry/waker.rs and runtime_waker.rs, unsafe code) under
# valgrind's memcheck: no invalid read or
# write, no use after free, no definitely lost block.
#
# Only "definite" leaks are errors: std and tokio keep per-thread and
# process-wide allocations (thread-locals, the test harness's output
# capture, lazily built statics) that are still reachable or only
# "possibly lost" when the process exits. A waker clone that forgot to
# drop its record's reference would show as definitely lost.
set -euo pipefail
cd "$(dirname "$0")/.."

# A missing valgrind is installed, or the step fails: a skipped memcheck
# proves nothing.
if ! command -v valgrind >/dev/null; then
    if [ "$(id -u)" = 0 ]; then apt-get install -y valgrind; else sudo apt-get install -y valgrind; fi
fi
command -v valgrind >/dev/null || { echo "valgrind is needed and could not be installed" >&2; exit 1; }

# The lib's unit-test binary: the last executable cargo reports.
binary=$(cargo test --lib --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
if [ -z "$binary" ]; then
    echo "could not find the lib's test binary" >&2
    exit 1
fi

# One test thread keeps the report readable and the run deterministic.
valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite "$binary" registry::waker::tests registry::runtime_waker::tests --test-threads=1
