#!/usr/bin/env bash
# Check that every crate of the workspace is ready for crates.io and
# docs.rs: its metadata is complete, its README is its crate documentation,
# and `cargo package --list` holds what a user needs and nothing else
# (README, license, sources; no file over 1 MB, no state directories,
# editor or patch leftovers, disk images or archives).
set -euo pipefail
cd "$(dirname "$0")/.."

max_file=$((1024 * 1024))
max_total=$((8 * 1024 * 1024))
stray='(^|/)(\.hive|target|node_modules)/|\.(orig|rej|swp|bak|iso|img|qcow2|vmdk|crate|tar|tgz|gz|zip)$|~$|(^|/)\.DS_Store$'
failed=0
fail() {
    echo "check-packages: $1: $2" >&2
    failed=1
}

metadata=$(cargo metadata --no-deps --format-version 1)
members=$(jq -r '.workspace_members[]' <<<"$metadata")
for id in $members; do
    pkg=$(jq -c --arg id "$id" '.packages[] | select(.id == $id)' <<<"$metadata")
    name=$(jq -r .name <<<"$pkg")
    dir=$(dirname "$(jq -r .manifest_path <<<"$pkg")")
    if [ "$(jq -r '.publish == []' <<<"$pkg")" = true ]; then
        continue
    fi

    # Metadata crates.io and docs.rs show.
    for field in description license readme documentation; do
        value=$(jq -r --arg f "$field" '.[$f] // ""' <<<"$pkg")
        [ -n "$value" ] || fail "$name" "Cargo.toml has no $field"
        case "$value" in *example.invalid* | *example.com*) fail "$name" "$field is a placeholder: $value" ;; esac
    done
    for field in keywords categories; do
        [ "$(jq --arg f "$field" '.[$f] | length' <<<"$pkg")" -gt 0 ] || fail "$name" "Cargo.toml has no $field"
    done
    repository=$(jq -r '.repository // ""' <<<"$pkg")
    case "$repository" in *example.invalid* | *example.com*) fail "$name" "repository is a placeholder: $repository" ;; esac
    documentation=$(jq -r '.documentation // ""' <<<"$pkg")
    [ -z "$documentation" ] || [ "$documentation" = "https://docs.rs/$name" ] ||
        fail "$name" "documentation is $documentation, expected https://docs.rs/$name"

    # The README is the crate documentation, so its example runs as a doc test.
    is_lib=$(jq '[.targets[] | select(.kind | index("lib"))] | length' <<<"$pkg")
    root_src="$dir/src/main.rs"
    [ "$is_lib" -gt 0 ] && root_src="$dir/src/lib.rs"
    grep -q '#!\[doc = include_str!("../README.md")\]' "$root_src" ||
        fail "$name" "$root_src does not include README.md as its documentation"
    if [ "$is_lib" -gt 0 ]; then
        grep -q '#!\[deny(missing_docs)\]' "$root_src" || fail "$name" "$root_src does not deny missing_docs"
    fi

    # What `cargo publish` would upload.
    if ! list=$(cargo package --list --allow-dirty --quiet -p "$name" 2>"${TMPDIR:-/tmp}/check-packages.err"); then
        fail "$name" "cargo package --list failed: $(cat "${TMPDIR:-/tmp}/check-packages.err")"
        continue
    fi
    if grep -q "warning" "${TMPDIR:-/tmp}/check-packages.err"; then
        fail "$name" "cargo package warns: $(grep warning "${TMPDIR:-/tmp}/check-packages.err")"
    fi
    for required in Cargo.toml README.md LICENSE; do
        grep -qx "$required" <<<"$list" || fail "$name" "the package has no $required"
    done
    total=0
    while IFS= read -r file; do
        case "$file" in Cargo.toml | Cargo.toml.orig | Cargo.lock | .cargo_vcs_info.json) continue ;; esac
        if grep -Eq "$stray" <<<"$file"; then
            fail "$name" "stray file in the package: $file (exclude it in Cargo.toml)"
        fi
        if [ ! -e "$dir/$file" ]; then
            fail "$name" "the package lists $file, which is not in $dir"
            continue
        fi
        size=$(stat -L -c %s "$dir/$file")
        total=$((total + size))
        if [ "$size" -gt "$max_file" ]; then
            fail "$name" "$file is $size bytes (over 1 MB): exclude it or make it smaller"
        fi
    done <<<"$list"
    if [ "$total" -gt "$max_total" ]; then
        fail "$name" "the package holds $total bytes (over $max_total)"
    fi
    echo "check-packages: $name: $(wc -l <<<"$list") files, $total bytes"
done
exit "$failed"
