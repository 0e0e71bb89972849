#!/usr/bin/env bash
# Try leakcheck on a published crate's own test suite.
#
#   scripts/try-on-crate.sh CRATE VERSION [LEAKCHECK_PATH]
#
# Unpacks CRATE VERSION's published source (it must include tests/) into a
# scratch directory, adds leakcheck as a dev-dependency by path (this
# repository, or LEAKCHECK_PATH), and runs the crate's tests in these modes:
#
#   base-test / base-nextest          the unmodified tests (the baseline)
#   attr-test / attr-nextest          #[leakcheck::leak_check] on every test
#   unstable-test / unstable-nextest  the same, RUSTFLAGS="--cfg tokio_unstable"
#   main-test / main-nextest          the unmodified tests with
#                                     leakcheck::verify_test_main!(); at the top
#                                     of every file of tests/ that is a target
#
# Each test target (the lib's unit tests, each tests/ target) is built on its
# own first (`cargo test --lib|--test NAME --no-run`), so a target that does
# not compile counts as a compile error instead of failing the whole run; then
# it runs with --no-fail-fast under `timeout`. At the end it prints, per mode,
# passed / failed / ignored / compile-error counts and every test whose
# outcome differs from the baseline of the same runner, and where the logs are.
#
# Environment:
#   TRY_DIR           scratch directory (default /tmp/try-on-crate/CRATE-VERSION);
#                     emptied first
#   TRY_FEATURES      cargo feature arguments for every build, e.g.
#                     "--features full" or "--all-features" (default: none)
#   TRY_MODES         the modes to run after the baseline, space separated
#                     (default: all of attr unstable main)
#   TRY_TIMEOUT       seconds per cargo run (default 900)
#   LEAKCHECK_SETTLE  settle period of every check (default 1s)
#   CARGO_BUILD_JOBS  build parallelism (default 2)
#
# The baseline's Cargo.toml has the leakcheck dev-dependency too (unused
# there), so every variant resolves the same dependency versions and shares
# one target directory per RUSTFLAGS: dependencies are built twice, not
# eight times.
set -euo pipefail

die() { echo "try-on-crate: error: $*" >&2; exit 1; }

[[ $# -ge 2 && $# -le 3 ]] || die "usage: $0 CRATE VERSION [LEAKCHECK_PATH]"
CRATE=$1
VERSION=$2
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LEAKCHECK_PATH=$(cd "${3:-$SCRIPT_DIR/..}" && pwd) || die "no such directory: ${3:-}"
REWRITE="$SCRIPT_DIR/try_on_crate_rewrite.py"
[[ -f $REWRITE ]] || die "missing $REWRITE"
grep -q '^name = "leakcheck"' "$LEAKCHECK_PATH/Cargo.toml" 2>/dev/null \
  || die "$LEAKCHECK_PATH is not a leakcheck checkout (no Cargo.toml with name = \"leakcheck\")"
command -v python3 >/dev/null || die "python3 is needed"
cargo nextest --version >/dev/null 2>&1 || die "cargo-nextest is needed (cargo install cargo-nextest)"

TRY_DIR=${TRY_DIR:-/tmp/try-on-crate/$CRATE-$VERSION}
TRY_FEATURES=${TRY_FEATURES:-}
TRY_MODES=${TRY_MODES:-attr unstable main}
TRY_TIMEOUT=${TRY_TIMEOUT:-900}
export LEAKCHECK_SETTLE=${LEAKCHECK_SETTLE:-1s}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
export CARGO_TERM_COLOR=never
# Whatever the caller's shell has, the stable modes build without flags.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_TARGET_DIR

case $TRY_DIR in /|"$HOME"|"$LEAKCHECK_PATH") die "refusing TRY_DIR=$TRY_DIR" ;; esac
rm -rf "$TRY_DIR"
mkdir -p "$TRY_DIR/logs"
LOGS="$TRY_DIR/logs"
RUNS="$LOGS/runs.tsv"
: >"$RUNS"
echo "try-on-crate: $CRATE $VERSION in $TRY_DIR, leakcheck from $LEAKCHECK_PATH"
echo "try-on-crate: leakcheck at $(git -C "$LEAKCHECK_PATH" log -1 --format='%h %s' 2>/dev/null || echo '(not a git checkout)')"

# --- Fetch the published package through cargo's registry cache. ---
mkdir -p "$TRY_DIR/fetch/src"
: >"$TRY_DIR/fetch/src/lib.rs"
cat >"$TRY_DIR/fetch/Cargo.toml" <<EOF
[package]
name = "try-on-crate-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$CRATE = "=$VERSION"

[workspace]
EOF
cargo fetch --manifest-path "$TRY_DIR/fetch/Cargo.toml" >"$LOGS/fetch.log" 2>&1 \
  || { cat "$LOGS/fetch.log" >&2; die "could not fetch $CRATE $VERSION (log: $LOGS/fetch.log)"; }
PKG_SRC=$(cargo metadata --manifest-path "$TRY_DIR/fetch/Cargo.toml" --format-version 1 2>>"$LOGS/fetch.log" \
  | python3 -c '
import json, os, sys
name, version = sys.argv[1], sys.argv[2]
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == name and p["version"] == version:
        print(os.path.dirname(p["manifest_path"]))
' "$CRATE" "$VERSION")
[[ -n $PKG_SRC && -d $PKG_SRC ]] || die "could not find the source of $CRATE $VERSION in cargo's registry cache"
[[ -d $PKG_SRC/tests ]] \
  || die "the published package of $CRATE $VERSION has no tests/ directory (its Cargo.toml may exclude it); nothing to try"
echo "try-on-crate: source from $PKG_SRC"

# --- The variants: base (unmodified), attr (#[leak_check]), main (verify_test_main!). ---
mkdir -p "$TRY_DIR/base"
cp -R "$PKG_SRC/." "$TRY_DIR/base/"
chmod -R u+w "$TRY_DIR/base"
python3 - "$TRY_DIR/base/Cargo.toml" "$LEAKCHECK_PATH" <<'EOF'
import sys, tomllib
path, leakcheck = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    manifest = tomllib.load(f)
if "leakcheck" in manifest.get("dev-dependencies", {}):
    sys.exit(f"{path} already has a leakcheck dev-dependency")
extra = ""
if "dev-dependencies" in manifest and not all(
    isinstance(v, dict) for v in manifest["dev-dependencies"].values()
):
    # `[dev-dependencies]` with `key = "1"` lines: a dotted table would
    # redefine it, so add the key under that table instead.
    text = open(path, encoding="utf-8").read()
    marker = "[dev-dependencies]\n"
    assert marker in text, "a [dev-dependencies] table is expected"
    text = text.replace(marker, marker + f'leakcheck = {{ path = "{leakcheck}" }}\n', 1)
else:
    text = open(path, encoding="utf-8").read()
    extra += f'\n[dev-dependencies.leakcheck]\npath = "{leakcheck}"\n'
if "workspace" not in manifest:
    extra += "\n[workspace]\n"
with open(path, "w", encoding="utf-8") as f:
    f.write(text + extra)
EOF
(cd "$TRY_DIR/base" && cargo generate-lockfile >"$LOGS/lockfile.log" 2>&1) \
  || { cat "$LOGS/lockfile.log" >&2; die "cargo generate-lockfile failed (log: $LOGS/lockfile.log)"; }

# Test targets: the lib's unit tests (if it has any) and every test target.
cargo metadata --manifest-path "$TRY_DIR/base/Cargo.toml" --no-deps --format-version 1 \
  $TRY_FEATURES >"$LOGS/metadata.json" 2>>"$LOGS/lockfile.log"
python3 - "$LOGS/metadata.json" "$TRY_DIR/base" >"$LOGS/targets.tsv" <<'EOF'
import json, os, sys
meta = json.load(open(sys.argv[1]))
root = os.path.realpath(sys.argv[2])
for t in meta["packages"][0]["targets"]:
    kinds = t["kind"]
    src = os.path.relpath(os.path.realpath(t["src_path"]), root)
    if "test" in kinds:
        print(f"--test {t['name']}\t{t['name']}\t{src}")
    elif ("lib" in kinds or "proc-macro" in kinds or "rlib" in kinds) and t.get("test", True):
        print(f"--lib\tlib\t{src}")
EOF
[[ -s $LOGS/targets.tsv ]] || die "no test targets found (see $LOGS/metadata.json)"
echo "try-on-crate: test targets: $(cut -f2 "$LOGS/targets.tsv" | tr '\n' ' ')"

for v in attr main; do
  mkdir -p "$TRY_DIR/$v"
  cp -R "$TRY_DIR/base/." "$TRY_DIR/$v/"
done
{
  echo "# #[leakcheck::leak_check] added per file"
  find "$TRY_DIR/attr/tests" -name '*.rs' -print0 | sort -z | xargs -0 -r python3 "$REWRITE" attrs
  if [[ -d $TRY_DIR/attr/src ]]; then
    find "$TRY_DIR/attr/src" -name '*.rs' -print0 | sort -z | xargs -0 -r python3 "$REWRITE" attrs-src
  fi
} >"$LOGS/rewrite-attr.log"
echo "try-on-crate: added $(awk -F': ' '/^[^#]/ {n += $2} END {print n + 0}' "$LOGS/rewrite-attr.log") #[leak_check] attributes ($LOGS/rewrite-attr.log)"
while IFS=$'\t' read -r _ _ src; do
  case $src in tests/*) python3 "$REWRITE" test-main "$TRY_DIR/main/$src" ;; esac
done <"$LOGS/targets.tsv" >"$LOGS/rewrite-main.log"
(cd "$TRY_DIR" && diff -ru base attr >"$LOGS/attr.diff"; diff -ru base main >"$LOGS/main.diff") || true

# --- Build and run. ---
# run_mode MODE VARIANT TARGET_DIR RUSTFLAGS
run_mode() {
  local mode=$1 variant=$2 target_dir=$3 flags=$4
  local dir="$TRY_DIR/$variant" sel name src rc
  mkdir -p "$LOGS/$mode"
  while IFS=$'\t' read -r sel name src; do
    local build_log="$LOGS/build-$variant${flags:+-unstable}/$name.log"
    mkdir -p "$(dirname "$build_log")"
    # One build per variant and flags; both runners use its artifacts.
    if [[ ! -f $build_log.status ]]; then
      echo "try-on-crate: [$mode] building $name"
      # The variants are the same package at the same relative paths, so in
      # a shared target directory cargo would take another variant's fresh
      # build for this one's: sources newer than every output force the
      # rebuild.
      # Once per variant and flags: the later targets reuse its fresh lib.
      if [[ ! -f $(dirname "$build_log")/.touched ]]; then
        find "$dir" -name '*.rs' -exec touch {} +
        : >"$(dirname "$build_log")/.touched"
      fi
      rc=0
      (cd "$dir" && RUSTFLAGS="$flags" CARGO_TARGET_DIR="$target_dir" \
        timeout "$TRY_TIMEOUT" cargo test $TRY_FEATURES $sel --no-run) >"$build_log" 2>&1 || rc=$?
      echo "$rc" >"$build_log.status"
      if [[ $rc == 0 ]] && ! grep -q "Compiling $CRATE v$VERSION" "$build_log"; then
        die "cargo did not rebuild $CRATE for $mode $name: the run would test another variant's build ($build_log)"
      fi
    fi
    if [[ $(cat "$build_log.status") != 0 ]]; then
      printf '%s\t%s\tbuild-error\t%s\t%s\n' "$mode" "$name" "$(cat "$build_log.status")" "$build_log" >>"$RUNS"
      echo "try-on-crate: [$mode] $name: compile error ($build_log)"
      continue
    fi
    local log="$LOGS/$mode/$name.log"
    echo "try-on-crate: [$mode] running $name"
    rc=0
    case $mode in
      *-test)
        (cd "$dir" && RUSTFLAGS="$flags" CARGO_TARGET_DIR="$target_dir" \
          timeout "$TRY_TIMEOUT" cargo test $TRY_FEATURES $sel --no-fail-fast) >"$log" 2>&1 || rc=$? ;;
      *-nextest)
        (cd "$dir" && RUSTFLAGS="$flags" CARGO_TARGET_DIR="$target_dir" \
          timeout "$TRY_TIMEOUT" cargo nextest run $TRY_FEATURES $sel --no-fail-fast --no-tests=pass \
          --status-level all --final-status-level none --show-progress none) >"$log" 2>&1 || rc=$? ;;
    esac
    printf '%s\t%s\tran\t%s\t%s\n' "$mode" "$name" "$rc" "$log" >>"$RUNS"
  done <"$LOGS/targets.tsv"
}

STABLE_TARGET="$TRY_DIR/target"
UNSTABLE_TARGET="$TRY_DIR/target-unstable"
run_mode base-test base "$STABLE_TARGET" ""
run_mode base-nextest base "$STABLE_TARGET" ""
for m in $TRY_MODES; do
  case $m in
    attr) run_mode attr-test attr "$STABLE_TARGET" ""
          run_mode attr-nextest attr "$STABLE_TARGET" "" ;;
    unstable) run_mode unstable-test attr "$UNSTABLE_TARGET" "--cfg tokio_unstable"
              run_mode unstable-nextest attr "$UNSTABLE_TARGET" "--cfg tokio_unstable" ;;
    main) run_mode main-test main "$STABLE_TARGET" ""
          run_mode main-nextest main "$STABLE_TARGET" "" ;;
    *) die "unknown mode $m in TRY_MODES (expected attr, unstable, main)" ;;
  esac
done

python3 "$REWRITE" summarize "$RUNS" "$LOGS/targets.tsv" | tee "$LOGS/summary.txt"
echo
echo "try-on-crate: logs in $LOGS (summary: $LOGS/summary.txt, runs: $RUNS)"
echo "try-on-crate: rewritten sources: $TRY_DIR/attr, $TRY_DIR/main (diffs: $LOGS/attr.diff, $LOGS/main.diff)"
