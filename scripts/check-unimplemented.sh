#!/bin/sh
# Keeps crates/config/src/unimplemented.rs (parameters Rostfix accepts but no code
# reads) honest. Fails when a listed name appears as a string literal in a crate other
# than crates/config: someone implemented it, and its entry must go (otherwise its
# setting would be reported as having no effect while it has one). A line may carry
# the marker `unimplemented-ok` (or follow a line that has it) to say its literal is
# not an implementation (a test's sample value, say).
# Also prints, for information, the known parameters (crates/config/src/params.rs)
# that no other crate names and that the list lacks: each is read by code that builds
# its name (the smtp agent's `{smtp,lmtp}_...`, qmgr's `TRANSPORT_...`), is
# informational (mail_version, process_name, ...), or belongs on the list.
set -eu
cd "$(dirname "$0")/.."
list=crates/config/src/unimplemented.rs
params=crates/config/src/params.rs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Each name as the first string of an entry: `u("name", ...)` or `fixed("name", ...)`.
sed -nE 's/^[[:space:]]*(u|fixed)\("([A-Za-z0-9_]+)".*/\2/p' "$list" | sort -u >"$tmp/listed"
# Names of PARAMS: `p("name", ...)` on one line, or `"name",` alone after a `p(` line.
awk '
    /^[[:space:]]*p\("/ { s = $0; sub(/^[[:space:]]*p\("/, "", s); sub(/".*/, "", s); print s; next }
    /^[[:space:]]*p\($/ { want = 1; next }
    want && /^[[:space:]]*"/ { s = $0; sub(/^[[:space:]]*"/, "", s); sub(/".*/, "", s); print s; want = 0; next }
    { want = 0 }
' "$params" | sort -u >"$tmp/known"

sources=$(find crates -path crates/config -prune -o -path '*/src/*' -name '*.rs' -print)
# Every string literal outside crates/config that looks like a parameter name.
# shellcheck disable=SC2086
awk '!/unimplemented-ok/ && prev !~ /unimplemented-ok/ { print } { prev = $0 }' $sources | grep -oE '"[A-Za-z0-9_]+"' | tr -d '"' | sort -u >"$tmp/literals"

status=0
for name in $(comm -12 "$tmp/listed" "$tmp/literals"); do
    # shellcheck disable=SC2086
    where=$(grep -lF "\"$name\"" $sources | tr '\n' ' ')
    echo "$list: $name is named in $where- implemented? remove it from the list" >&2
    status=1
done
for name in $(comm -23 "$tmp/listed" "$tmp/known"); do
    echo "$list: $name is not in $params" >&2
    status=1
done

# Suffixes the smtp agent reads under its `smtp_`/`lmtp_` prefix, qmgr under a
# transport's name: names built that way are read.
grep -hoE 'name\("[a-z0-9_A-Z]+"\)|time\("[a-z0-9_]+"|num\("[a-z0-9_]+"|get\("[a-z0-9_]+"\)' \
    crates/smtp/src/settings.rs crates/qmgr/src/settings.rs 2>/dev/null |
    sed -E 's/^[a-z]+\("([^"]+)".*/\1/' | sort -u >"$tmp/suffixes"
unread=$(comm -23 "$tmp/known" "$tmp/literals" | comm -23 - "$tmp/listed" | while read -r name; do
    suffix=${name#*_}
    if grep -qxF "$suffix" "$tmp/suffixes"; then continue; fi
    echo "$name"
done)
if [ -n "$unread" ]; then
    echo "known parameters no other crate names and $list lacks (informational):"
    echo "$unread" | sed 's/^/    /'
fi
[ $status -eq 0 ] && echo "unimplemented parameters: none of the $(wc -l <"$tmp/listed") listed is named outside crates/config"
exit $status
