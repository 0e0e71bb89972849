#!/usr/bin/env bash
# Runs the unit tests of the counting waker (src/waker.rs, the crate's
# unsafe RawWaker vtable) under valgrind's memcheck: no invalid read or
# write, no use after free, no definitely lost block.
#
# Only "definite" leaks are errors: std and tokio keep per-thread and
# process-wide allocations (thread-locals, the test harness's output
# capture, lazily built statics) that are still reachable or only
# "possibly lost" when the process exits. A waker clone that forgot to
# drop its record's reference would show as definitely lost.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
    echo "valgrind is not installed: skipping" >&2
    exit 0
fi

# The lib's unit-test binary: the last executable cargo reports.
binary=$(cargo test --lib --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
if [ -z "$binary" ]; then
    echo "could not find the lib's test binary" >&2
    exit 1
fi

# One test thread keeps the report readable and the run deterministic.
valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite "$binary" waker::tests --test-threads=1
