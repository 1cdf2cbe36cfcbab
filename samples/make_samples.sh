#!/usr/bin/env bash
# Regenerates the shipped samples: espeak-ng (en-us) speech, resampled to 16 kHz mono 16-bit, each with its
# transcript beside it (so samples/ is also a tiny corpus for `evaluate` and `featurize`).
# Needs espeak-ng and the project's Python environment (soundfile, torchaudio).
set -euo pipefail
cd "$(dirname "$0")"

make_sample() {  # NAME TEXT
    local tmp
    tmp="$(mktemp --suffix .wav)"
    espeak-ng -v en-us -s 150 -w "$tmp" "$2"
    python - "$tmp" "$1.wav" <<'PY'
import sys

import numpy as np
import soundfile
import torch
import torchaudio.functional as F

samples, rate = soundfile.read(sys.argv[1], dtype="float32")
samples = F.resample(torch.from_numpy(samples), rate, 16000).numpy()
samples = samples / max(1e-9, float(np.abs(samples).max())) * 0.7
soundfile.write(sys.argv[2], samples, 16000, subtype="PCM_16")
PY
    rm -f "$tmp"
    echo "$2" | tr -d ',' > "$1.txt"
}

make_sample hello "hello world, this is a test"
make_sample seven "seven"
