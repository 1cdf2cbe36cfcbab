"""Example sentences of WordNet 3.0, a second text source beside the books of ../shared/data/text.

Debian's ``wordnet-base`` installs the database under /usr/share/wordnet. Each synset's gloss ends with
quoted usage examples ("she put the slippers under the bed neatly"): about 48,000 short sentences of
present-day English, where the books are 19th-century prose. The books are read out by the eighth
synthetic round (models/README.md, twenty-fifth stretch), so these are the fresh text of later rounds and
are also read by the language models (export.py --wordnet).

Licence: WordNet 3.0 licence (permissive; keep the notice), recipes/english/README.md.
"""

from __future__ import annotations

import re
from pathlib import Path

from text_sources import distinct_sentences

WORDNET_DIR = Path("/usr/share/wordnet")
_EXAMPLE = re.compile(r'"([^"]+)"')
_ODD = re.compile(r"[`|;_]|\.\.\.")  # quoted word lists ("`each,' `every,'") and elisions, not sentences


def gloss_examples(line: str) -> list[str]:
    """The quoted examples of one line of a data.* file (synset fields, then ``| gloss; "example"``)."""
    if line.startswith("  ") or "|" not in line:  # the licence header lines start with two spaces
        return []
    return [example.strip() for example in _EXAMPLE.findall(line.split("|", 1)[1])]


def wordnet_sentences(folder: Path = WORDNET_DIR, exclude: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """(original, normalised) example sentences, each text once, in file order; those whose normalised
    form is in ``exclude`` (e.g. every transcript of the dev sets) are left out."""
    paths = [folder / f"data.{part}" for part in ("noun", "verb", "adj", "adv")]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"WordNet database not found ({missing[0]}): apt-get install wordnet-base")
    examples = (example for path in paths for line in path.read_text(encoding="latin-1").splitlines()
                for example in gloss_examples(line))
    return distinct_sentences((example for example in examples if not _ODD.search(example)), exclude)
