"""Turn a training checkpoint into the shipped model: fp16 weights plus a character LM and a word LM.

    python recipes/english/export.py runs/english/best.pt models/base.pt
    python recipes/english/export.py runs/english/last.pt models/base.pt --average runs/english/anneal_*.pt

``--average`` averages the weights of several checkpoints of one run (snapshots taken while the
learning rate anneals), a free gain in most attention-ASR recipes (ESPnet averages its best 10).

Both LMs are trained on the book sentences except the held-out books (pg11, pg844), so the
synthetic dev set stays text-unseen. The word LM also reads NUMBER_TEXTS spoken-number texts like
those of the synthetic corpus (digits, digit strings, cardinals): the books hardly hold a number
said on its own, and without them the word LM pulls single digits towards frequent book words.
With --wordnet both LMs also read WordNet's example sentences (recipes/english/wordnet_text.py), short
present-day English beside the books' older prose; with --fortunes the sentences of Debian's fortune
cookies (recipes/english/fortune_text.py), conversational English. Any that equals a dev transcript is left out.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np
import torch

from speechcli.checkpoint import read_bundle, write_bundle
from speechcli.lm import CharNgramLM
from speechcli.word_lm import WordNgramLM

from make_corpus import load_fortunes, load_wordnet, number_words

HELD_OUT_BOOKS = ("pg11", "pg844")
NUMBER_TEXTS = 3000


def number_texts(count: int) -> list[str]:
    rng = random.Random(0)
    return [number_words(rng) for _ in range(count)]


def book_sentences(text_dir: Path) -> list[str]:
    sentences = []
    for path in sorted(text_dir.glob("*.txt")):
        if path.stem not in HELD_OUT_BOOKS:
            sentences += [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return sentences


def averaged_weights(bundles: list[dict]) -> dict:
    """The element-wise mean of the bundles' float weights; all must share model, vocabulary and stats."""
    first = bundles[0]
    for other in bundles[1:]:
        for key in ("model_config", "feature_config", "vocab"):
            if other[key] != first[key]:
                sys.exit(f"error: cannot average checkpoints with different {key}")
        if not (torch.equal(other["mean"], first["mean"]) and torch.equal(other["std"], first["std"])):
            sys.exit("error: cannot average checkpoints with different normalisation stats (other feature caches)")
    averaged = {}
    for name, value in first["state_dict"].items():
        if value.is_floating_point():
            total = sum(bundle["state_dict"][name].double() for bundle in bundles)
            averaged[name] = (total / len(bundles)).to(value.dtype)
        else:
            averaged[name] = value
    return averaged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--text", type=Path, default=Path("../shared/data/text/normalized"))
    parser.add_argument("--lm-order", type=int, default=6)
    parser.add_argument("--lm-min-count", type=int, default=3)
    parser.add_argument("--no-lm", action="store_true")
    parser.add_argument("--word-lm-order", type=int, default=3)
    parser.add_argument("--word-lm-min-count", type=int, default=2, help="the highest order keeps n-grams seen this often")
    parser.add_argument("--word-lm-weight", type=float, default=0.3, help="default word LM weight recorded for decoding")
    parser.add_argument("--oov-penalty", type=float, default=-1.2, help="default score of a word the word LM does not know")
    parser.add_argument("--no-word-lm", action="store_true")
    parser.add_argument("--number-texts", type=int, default=NUMBER_TEXTS,
                        help="spoken-number texts the word LM reads beside the sentences")
    parser.add_argument("--wordnet", action="store_true", help="both LMs also read WordNet's example sentences "
                                                               "(apt-get install wordnet-base)")
    parser.add_argument("--fortunes", action="store_true", help="both LMs also read the sentences of Debian's "
                                                                "fortune cookies (apt-get install fortunes)")
    parser.add_argument("--lm-weight", type=float, default=0.3, help="default LM weight recorded for decoding")
    parser.add_argument("--ctc-weight", type=float, default=0.3, help="default CTC weight of beam search recorded")
    parser.add_argument("--beam-size", type=int, default=8, help="default beam width recorded")
    parser.add_argument("--speeds", help="default playback speeds recorded, comma-separated (default: record none, "
                                          "so that speechcli's own default applies)")
    parser.add_argument("--average", type=Path, nargs="+", default=[],
                        help="more checkpoints of the same run: export the mean of their weights and CHECKPOINT's")
    args = parser.parse_args()

    bundle = read_bundle(args.checkpoint)
    bundle.pop("training_state", None)
    if args.average:
        bundle["state_dict"] = averaged_weights([bundle] + [read_bundle(path) for path in args.average])
        bundle["info"]["averaged"] = [str(path) for path in [args.checkpoint, *args.average]]
    bundle["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in bundle["state_dict"].items()}
    bundle["info"]["decoding"] = {"ctc_weight": args.ctc_weight, "beam_size": args.beam_size}
    if args.speeds:
        bundle["info"]["decoding"]["speeds"] = [float(speed) for speed in args.speeds.split(",")]
    lm_text = book_sentences(args.text) if not (args.no_lm and args.no_word_lm) else []
    if lm_text and args.wordnet:
        lm_text += [normalised for _, _, normalised in load_wordnet(args.text.resolve().parents[1])]
    if lm_text and args.fortunes:
        lm_text += [normalised for _, _, normalised in load_fortunes(args.text.resolve().parents[1])]
    if not args.no_lm:
        sentences = lm_text
        lm = CharNgramLM.train(sentences, order=args.lm_order, min_count=args.lm_min_count)
        bundle["lm"] = lm.to_dict()
        bundle["info"]["decoding"]["lm_weight"] = args.lm_weight
        bundle["info"]["lm"] = {"order": args.lm_order, "min_count": args.lm_min_count,
                                "sentences": len(sentences), "contexts": len(lm.index), "wordnet": args.wordnet,
                                "fortunes": args.fortunes}
    if not args.no_word_lm:
        sentences = lm_text + number_texts(args.number_texts)
        word_lm = WordNgramLM.train(sentences, order=args.word_lm_order, min_count=args.word_lm_min_count)
        bundle["word_lm"] = word_lm.to_dict()
        bundle["info"]["decoding"].update(word_lm_weight=args.word_lm_weight, oov_penalty=args.oov_penalty)
        bundle["info"]["word_lm"] = {"order": args.word_lm_order, "min_count": args.word_lm_min_count,
                                     "sentences": len(sentences), "words": len(word_lm.words) - 2, "wordnet": args.wordnet,
                                     "fortunes": args.fortunes,
                                     "ngrams": [int((~np.isnan(p)).sum()) for p in word_lm.log_probs]}
    write_bundle(args.out, bundle)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)


if __name__ == "__main__":
    main()
