#!/usr/bin/env bash
# Fine-tune the English model on one CUDA GPU within a fixed time budget, from corpus parts packed
# as Opus by recipes/english/pack.py (each part: list.tsv + audio/).
#   recipes/english/gpu.sh OUT MINUTES INIT_CHECKPOINT DEV_PART TRAIN_PART...
# Parts whose name starts with "real" are listed twice, so that the real voices are not drowned by
# the synthetic hours. MINUTES bounds the whole
# script; training gets what featurizing leaves, and its learning rate anneals within it.
# Writes OUT/run/{best,last}.pt, their fp16 copies OUT/run-{best,last}-fp16.pt and OUT/train.log.
# Defaults are for fine-tuning a trained model: no augmentation, a modest peak learning rate (a first
# H100 run with SpecAugment, --perturb and a 2.5e-3 peak came out worse than its starting point).
# Override with AUGMENT="--spec-augment --perturb", LR, DROPOUT, BATCH_FRAMES. The model's shape is
# INIT_CHECKPOINT's (a widened one from recipes/english/widen.py included).
set -euo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the repo itself, installed or not
out=$1 minutes=$2 init=$3 dev=$4
batch_frames=${BATCH_FRAMES:-200000}
shift 4
started=$(date +%s)
mkdir -p "$out"
log="$out/train.log"
python3 - "$out/train.tsv" "$@" <<'EOF'
import sys
from pathlib import Path
manifest, parts = sys.argv[1], sys.argv[2:]
with open(manifest, "w") as out:
    for part in map(Path, parts):
        rows = [line.rstrip("\n").split("\t") for line in open(part / "list.tsv")]
        repeats = 2 if part.name.startswith("real") else 1
        for _ in range(repeats):
            for audio, text in rows:
                out.write(f"{(part / audio).resolve()}\t{text}\n")
        print(f"{part}: {len(rows)} clips x{repeats}", file=sys.stderr)
EOF
jobs=$(nproc)
python3 -m speechcli featurize --data "$out/train.tsv" --cache "$out/cache/train" --jobs "$jobs" --quiet
python3 -m speechcli featurize --data "$dev/list.tsv" --cache "$out/cache/dev" --jobs "$jobs" --quiet
echo "featurized in $(( $(date +%s) - started )) s" | tee -a "$log"

train_minutes() {  # what is left of the budget, less 75 s for validation, saving and export
    python3 -c "import sys,time; print(max(0.5, ($minutes * 60 - (time.time() - $started) - 75) / 60))"
}
train() {  # precision, minutes, run directory, starting checkpoint
    python3 -m speechcli train --data "$out/cache/train" --dev "$out/cache/dev" --out "$3" \
        --init-from "$4" --device "${DEVICE:-cuda}" --precision "$1" --max-minutes "$2" --epochs 1000 \
        --batch-frames "$batch_frames" --lr "${LR:-1e-3}" --warmup-steps 50 --checkpoint-minutes 1 \
        --ctc-weight 0.5 --dropout "${DROPOUT:-0.1}" ${AUGMENT:---no-spec-augment} --resume 2>&1 | tr '\r' '\n' >> "$log"
}
# bf16 autocast first; if that fails (an unsupported kernel or too big a batch, say), the rest of the
# time in fp32 with half the batch,
# from the failed run's last checkpoint when it left one
if ! train auto "$(train_minutes)" "$out/run" "$init"; then
    echo "bf16 run failed; continuing in fp32 with half the batch" | tee -a "$log"
    batch_frames=$(( batch_frames / 2 ))
    again="$init"; [ -f "$out/run/last.pt" ] && again="$out/run/last.pt"
    train fp32 "$(train_minutes)" "$out/run2" "$again" || echo "fp32 run failed too" | tee -a "$log"
fi
for run in run run2; do
    for name in best last; do
        if [ -f "$out/$run/$name.pt" ]; then
            python3 recipes/english/export.py "$out/$run/$name.pt" "$out/$run-$name-fp16.pt" --no-lm >> "$log" 2>&1
        fi
    done
done
echo "finished in $(( $(date +%s) - started )) s" | tee -a "$log"
