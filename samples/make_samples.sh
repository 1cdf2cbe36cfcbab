#!/usr/bin/env bash
# Regenerates the shipped sample: espeak-ng (en-us) speech, resampled to 16 kHz mono 16-bit.
# Needs espeak-ng and the project's Python environment (soundfile, torchaudio).
set -euo pipefail
cd "$(dirname "$0")"
text="hello world, this is a test"
tmp="$(mktemp --suffix .wav)"
trap 'rm -f "$tmp"' EXIT
espeak-ng -v en-us -s 150 -w "$tmp" "$text"
python - "$tmp" <<'PY'
import sys

import numpy as np
import soundfile
import torch
import torchaudio.functional as F

samples, rate = soundfile.read(sys.argv[1], dtype="float32")
samples = F.resample(torch.from_numpy(samples), rate, 16000).numpy()
samples = samples / max(1e-9, float(np.abs(samples).max())) * 0.7
soundfile.write("hello.wav", samples, 16000, subtype="PCM_16")
PY
echo "hello world this is a test" > hello.txt
