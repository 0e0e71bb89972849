#!/usr/bin/env bash
# What a suite pays for `#[leak_check]`: 500 trivial tests, each spawning
# and awaiting one task, as `#[tokio::test]` and with `#[leak_check]` added
# (benches/suite/). libtest runs each test on a thread of its own, as in
# any real suite, so this counts what a test really costs, thread included.
#
#   bash benches/suite.sh            # release build; needs valgrind
#   PROFILE=dev bash benches/suite.sh  # as a plain `cargo test` builds it
#
# Prints, for each suite: the median CPU time (user + system) of RUNS
# samples of five whole runs, taken in turn with the other suites' so that
# the machine's load hits them alike, and instructions per test from
# callgrind (a run of all 500 minus a run of 100, over 400; the median of
# three).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 1; }
profile=${PROFILE:-release}
runs=${RUNS:-11}
suites="suite_tokio_test suite_leak_check suite_leak_check_spawn"

declare -A binary
for suite in $suites; do
    binary[$suite]=$(cargo test -p leakcheck-benches --profile "$profile" --test "$suite" --no-run \
        --message-format=json 2>/dev/null |
        sed -n "s/.*\"executable\":\"\([^\"]*$suite-[^\"]*\)\".*/\1/p" | tail -n 1)
    [ -x "${binary[$suite]}" ] || { echo "could not build $suite" >&2; exit 1; }
done

# cpu_ms BINARY: user + system milliseconds of one whole run, the mean of
# five back to back (one run is ~40 ms, and `time` counts milliseconds).
cpu_ms() {
    local out
    out=$( { TIMEFORMAT='%3U %3S'; time for _ in 1 2 3 4 5; do "$1" -q >/dev/null 2>&1; done; } 2>&1 )
    awk -v t="$out" 'BEGIN { split(t, a, " "); printf "%.1f\n", (a[1] + a[2]) * 1000 / 5 }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A times
for _ in $(seq "$runs"); do
    for suite in $suites; do
        times[$suite]+="$(cpu_ms "${binary[$suite]}") "
    done
done

# instructions BINARY [FILTER]: total instructions of one run, one test at
# a time (each still on a thread of its own): with two at once the count
# moves by a thousand a test between runs.
instructions() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" -q --test-threads=1 2>&1 |
        sed -n 's/.*refs: *\([0-9,]*\).*/\1/p' | tr -d ,
}

# per_test BINARY: instructions a test, the median of three differences.
per_test() {
    local all some
    for _ in 1 2 3; do
        all=$(instructions "$1")
        some=$(instructions "$1" h0::)
        echo $(((all - some) / 400))
    done | median
}

plain_ms=$(tr ' ' '\n' <<<"${times[suite_tokio_test]}" | grep . | median)
plain_instr=0
echo "profile: $profile; CPU: median of $runs samples (each the mean of 5 runs of 500 tests)"
echo "| suite | CPU ms (500 tests) | ratio | instructions per test | ratio |"
echo "|---|---|---|---|---|"
for suite in $suites; do
    ms=$(tr ' ' '\n' <<<"${times[$suite]}" | grep . | median)
    per_test=$(per_test "${binary[$suite]}")
    [ "$plain_instr" = 0 ] && plain_instr=$per_test
    awk -v s="$suite" -v ms="$ms" -v pms="$plain_ms" -v i="$per_test" -v pi="$plain_instr" \
        'BEGIN { printf "| %s | %.1f | %.2f× | %d | %.2f× |\n", s, ms, ms / pms, i, i / pi }'
done
