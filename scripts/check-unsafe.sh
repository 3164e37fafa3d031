#!/bin/sh
# Every crate root must forbid unsafe code, or deny it and allow it only in the modules
# that say so at their top (each unsafe block there carries a SAFETY comment). New
# crates and new binaries then cannot add unsafe code without a visible opt-in.
set -eu
cd "$(dirname "$0")/.."
status=0
for root in crates/*/src/lib.rs crates/*/src/main.rs crates/*/src/bin/*.rs; do
    [ -e "$root" ] || continue
    if ! grep -Eq '^#!\[(forbid|deny)\(unsafe_code\)\]' "$root"; then
        echo "$root: crate root lacks #![forbid(unsafe_code)] (or #![deny(unsafe_code)] with per-module allows)" >&2
        status=1
    fi
done
for f in $(grep -rlE 'unsafe (\{|fn|impl)' crates --include='*.rs'); do
    if ! grep -q 'allow(unsafe_code)\]' "$f"; then
        echo "$f: unsafe code in a module without #![allow(unsafe_code)] (or #[allow] on its test module)" >&2
        status=1
    fi
done
for f in $(grep -rl 'allow(unsafe_code)\]' crates --include='*.rs'); do
    n_unsafe=$(grep -cE 'unsafe (\{|fn|impl)' "$f" || true)
    n_safety=$(grep -cE 'SAFETY|# Safety' "$f" || true)
    if [ "$n_safety" -lt "$n_unsafe" ]; then
        echo "$f: $n_unsafe unsafe uses but only $n_safety SAFETY comments" >&2
        status=1
    fi
done
[ $status -eq 0 ] && echo "unsafe code: confined to the modules that allow it, each use with a SAFETY comment"
exit $status
