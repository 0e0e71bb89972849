#!/usr/bin/env bash
# Fails when a part of src/ uses a part it must not: the dependencies
# between the parts run one way (docs/ARCHITECTURE.md, "Dependencies").
# It reads code paths (`crate::<part>::`), not comments; tests inside a
# file may use the public API (`crate::spawn(...)`), which is not a path
# into another part.
set -euo pipefail
cd "$(dirname "$0")/../src"

# part: the parts it may use
allowed=(
    "registry:"
    "spawn:registry runtime"
    "runtime:registry"
    "report:registry"
    "check:registry runtime report"
    "profile.rs:registry report"
    "watch.rs:registry spawn profile"
)
parts="registry spawn runtime report check profile watch"

status=0
for entry in "${allowed[@]}"; do
    part=${entry%%:*}
    may=" ${entry#*:} "
    for other in $parts; do
        [ "$part" = "$other" ] || [ "$part" = "$other.rs" ] && continue
        case "$may" in *" $other "*) continue ;; esac
        # Code lines only: drop `//` comments (docs included) first.
        hits=$(grep -rn "crate::$other::" "$part" | grep -v '^[^:]*:[0-9]*:\s*//' || true)
        if [ -n "$hits" ]; then
            echo "src/$part must not use src/$other:" >&2
            echo "$hits" >&2
            status=1
        fi
    done
done
[ "$status" = 0 ] && echo "layers: every dependency between the parts of src/ runs one way"
exit "$status"
