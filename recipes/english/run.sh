#!/usr/bin/env bash
# The English model end to end; every stage is resumable, so rerun the same command after an interruption.
#   recipes/english/run.sh corpus     # synthesise + split (about 11 min on 2 cores)
#   recipes/english/run.sh features   # log-mel caches of train and dev sets
#   recipes/english/run.sh train      # background training, log in runs/english.log (resumes from last.pt)
#   recipes/english/run.sh finetune   # background fine-tuning of models/base.pt's weights, log in runs/english_cond.log
#   recipes/english/run.sh export     # runs/english_cond/last.pt (or the checkpoint given, then export.py options
#                                     # such as --average CKPT...) + character and word LMs -> models/base.pt
#   recipes/english/run.sh evaluate   # WER/CER on every dev set
# CONDITION_ROUND=n before corpus, features, train or finetune: the n-th fresh draw of the real clips'
# recording-condition copies (models/README.md, fifteenth stretch), cached in work/english/cache/train_r<n>;
# the run directories get the same _r<n> suffix; from round 2 on the copies include pauses in a quiet room
# (models/README.md, sixteenth stretch), from round 14 on 8-bit storage (twenty-ninth stretch)
# SYNTH_ROUND=n likewise: the n-th draw of synthetic training sentences, each round reading book sentences no
# earlier round read, in fresh voices (models/README.md, seventeenth stretch), and from round 4 on its own
# spoken-number clips (twentieth stretch); suffix _s<n>. The books are read out in round 8: from there a round
# fills its hours with sentences read before, in fresh voices (files <book>_<line>_s<n>.wav, twenty-fifth stretch);
# from round 9 on WordNet's example sentences join them as unread text (recipes/english/wordnet_text.py), from
# round 11 on the sentences of Debian's fortune cookies (recipes/english/fortune_text.py)
# FINETUNE_MINUTES=n before finetune: its length in training minutes (default 95; the eighteenth and nineteenth stretches ran 90)
# PERTURB=1 before finetune: random tempo and vocal-tract (mel-axis) warps of every batch (`train --perturb`);
# the run directory gets the suffix _p (models/README.md, twenty-second stretch); PERTURB_RANGE=x as well: the
# warps' factors drawn from 1 ± x instead of ±0.1 (`train --perturb-range`), suffix _p<x>
set -euo pipefail
cd "$(dirname "$0")/../.."
out=work/english
export OMP_WAIT_POLICY=PASSIVE
dev_sets="dev_synth dev_kathleen dev_cv dev_so762 dev_fsdd dev_fsdd_nicolas"
round=${CONDITION_ROUND:-0}  # make_corpus.py --condition-round (see the top)
synth_round=${SYNTH_ROUND:-0}  # make_corpus.py --synth-round
suffix=$([ "$round" = 0 ] || echo "_r$round")$([ "$synth_round" = 0 ] || echo "_s$synth_round")  # of the train
# cache and the run directories
train_cache=$out/cache/train$suffix

train_in_background() {  # run directory, then the options that differ between training and fine-tuning
    local run=$1; shift
    mkdir -p "$(dirname "$run")"  # a fresh checkout has no runs/ yet
    OMP_NUM_THREADS=1 nohup torchrun --standalone --nproc_per_node 2 -m speechcli train \
        --data "$train_cache" --dev "$out/cache/dev_cv" --out "$run" --epochs 12 --batch-frames 6000 \
        --warmup-steps 100 --ctc-weight 0.5 --dropout 0.1 --no-spec-augment --threads 1 --resume "$@" > "$run.log" 2>&1 &
    echo "training in the background: tail -f $run.log"
}

corpus_packages="espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts wordnet-base fortunes"

install_missing_corpus_packages() {  # the Debian text-to-speech engines and the texts (WordNet, fortunes) that make_corpus.py
    # uses; apt-get only for those missing
    local missing=""
    for package in $corpus_packages; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing="$missing $package"
    done
    [ -z "$missing" ] && return 0
    local sudo=$([ "$(id -u)" = 0 ] || echo sudo)
    echo "installing the packages the corpus needs:$missing" >&2
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
}

case "${1:-}" in
corpus)
    install_missing_corpus_packages
    python recipes/english/make_corpus.py --out "$out" --hours 15 --jobs 2 --condition-copies --condition-round "$round" \
        --synth-round "$synth_round" ;;
features)
    speechcli featurize --data "$out/train.tsv" --cache "$train_cache" --jobs 2
    for set in $dev_sets; do
        speechcli featurize --data "$out/$set.tsv" --cache "$out/cache/$set" --jobs 2
    done ;;
train)
    # resumable: rerun the same command after an interruption; it stops after 1200 min of training in
    # all (raised from 900 as the run went on). No SpecAugment or tempo/mel warping: the model still underfits 37 h (see models/README.md).
    # Two 1-thread processes: on 2 cores one 2-thread process trains at 13 audio-s/s, one 1-thread
    # process at 22, two 1-thread processes (torchrun) at about 31; 6000-frame batches, the unpacked
    # encoder and bf16 autocast (--precision auto on a CPU with AVX512-BF16) took that to about 60.
    train_in_background runs/english$suffix --max-steps 20000 --max-minutes 1200 --lr 1.5e-3 ;;
finetune)
    # the fourteenth stretch of models/README.md: the shipped weights, 95 more minutes on the corpus whose real
    # clips also have a copy under another recording condition (noise, narrow band, quiet, reverb, zeros);
    # the starting checkpoint's feature statistics are kept. Export runs/english_cond/last.pt afterwards.
    perturb=$([ "${PERTURB:-0}" = 0 ] || echo "--perturb${PERTURB_RANGE:+ --perturb-range $PERTURB_RANGE}")
    train_in_background runs/english_cond$suffix${perturb:+_p${PERTURB_RANGE:-}} --init-from "${2:-models/base.pt}" \
        --max-minutes "${FINETUNE_MINUTES:-95}" --lr 3e-4 $perturb ;;
export)
    # last.pt, the end of an annealed schedule: best.pt is picked by greedy CER on 300 clips, which is noisy,
    # and at step 10,800 last.pt beat it with the beam and the LM on all three 80-clip samples (models/README.md)
    # the shipped model: CONDITION_ROUND=11 SYNTH_ROUND=9 FINETUNE_MINUTES=85 PERTURB=1 run.sh finetune (from the
    # models/base.pt of git show 334be49:models/base.pt), then run.sh export runs/english_cond_r11_s9_p/last.pt
    # --wordnet. The one before: CONDITION_ROUND=9 SYNTH_ROUND=7 ... PERTURB_RANGE=0.15, exported with --average
    # PREVIOUS (git show 882c262:models/base.pt), itself run.sh export of runs/english_cond_r8_s6_p/last.pt (the
    # ones before it: _r7_s5_p, and _r6_s4 without PERTURB)
    python recipes/english/export.py "${2:-runs/english_cond/last.pt}" models/base.pt --ctc-weight 0.2 --lm-weight 0.2 \
        --beam-size 8 "${@:3}" ;;
evaluate)
    for set in $dev_sets; do
        echo "== $set"
        speechcli evaluate --data "$out/$set.tsv" --worst 3
    done ;;
*)
    sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 2 ;;  # the comment block at the top
esac
