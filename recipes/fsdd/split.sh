#!/usr/bin/env bash
# FSDD's official split: recordings with index 0-4 of each speaker are the test set.
# Usage: recipes/fsdd/split.sh [FSDD_DIR] [OUT_DIR]  → OUT_DIR/train.tsv, OUT_DIR/test.tsv
set -euo pipefail
fsdd=$(cd "${1:-../shared/data/fsdd}" && pwd)
out=${2:-work/fsdd}
mkdir -p "$out"
awk -F'\t' -v root="$fsdd" '$1 !~ /_[0-4]\.wav$/ {print root "/" $1 "\t" $2}' "$fsdd/transcripts.tsv" > "$out/train.tsv"
awk -F'\t' -v root="$fsdd" '$1 ~ /_[0-4]\.wav$/ {print root "/" $1 "\t" $2}' "$fsdd/transcripts.tsv" > "$out/test.tsv"
wc -l "$out/train.tsv" "$out/test.tsv" >&2
