#!/bin/bash
# Every MESSAGE_ID in src/message-ids.h has a journal catalog entry and a
# place in the man page, and the catalog has no entry for an ID that is gone;
# the catalog compiles and journalctl lists every entry.
# Usage: message-ids.sh SOURCE_DIR
set -euo pipefail

src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sed -n 's/^#define MESSAGE_ID_[A-Z_]* *"\([0-9a-f]\{32\}\)".*/\1/p' \
        "$src/src/message-ids.h" | sort >"$tmp/ids"
sed -n 's/^-- \([0-9a-f]\{32\}\)$/\1/p' "$src/catalog/echod.catalog" | sort >"$tmp/catalog"

failed=0
if [ "$(wc -l <"$tmp/ids")" -ne "$(grep -c '^#define MESSAGE_ID_' "$src/src/message-ids.h")" ]; then
        echo "src/message-ids.h: a MESSAGE_ID is not 32 lowercase hex digits"
        failed=1
fi
for id in $(comm -23 "$tmp/ids" "$tmp/catalog"); do
        echo "catalog/echod.catalog: no entry for $id"
        failed=1
done
for id in $(comm -13 "$tmp/ids" "$tmp/catalog"); do
        echo "catalog/echod.catalog: entry for $id, which src/message-ids.h does not define"
        failed=1
done
while read -r id; do
        grep -q "^\.B $id\$" "$src/man/echod.8" || {
                echo "man/echod.8: $id is not listed under MESSAGE IDS"
                failed=1
        }
done <"$tmp/ids"

# journalctl compiles the catalog as the package's trigger will, and lists
# an entry for each ID.
if command -v journalctl >/dev/null; then
        mkdir -p "$tmp/root/usr/lib/systemd/catalog"
        cp "$src/catalog/echod.catalog" "$tmp/root/usr/lib/systemd/catalog/"
        journalctl --root="$tmp/root" --update-catalog
        journalctl --root="$tmp/root" --list-catalog | cut -d' ' -f1 | sort >"$tmp/listed"
        if ! cmp -s "$tmp/ids" "$tmp/listed"; then
                echo "journalctl --list-catalog does not list exactly the IDs of src/message-ids.h:"
                diff "$tmp/ids" "$tmp/listed" || true
                failed=1
        fi
fi
[ "$failed" -eq 0 ] && echo "$(wc -l <"$tmp/ids") MESSAGE_IDs: each in the catalog and the man page"
exit "$failed"
