"""Tokenizers for training data: raw bytes, a tokenizer.json, a GGUF's tokenizer, or a BPE trained here."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..errors import SinklabError

BYTE_EOT = 0  # raw bytes keep a vocabulary of 256: NUL (absent from text) separates documents


@dataclass
class DataTokenizer:
    name: str
    vocab_size: int
    eot_id: int
    encode: Callable[[str], list[int]]
    tokenizer_json: str | None = None   # serialised HF tokenizer, saved next to the shards
    encode_batch: Callable[[list[str]], list[list[int]]] | None = None  # multi-threaded, where available


def byte_level() -> DataTokenizer:
    return DataTokenizer("bytes", 256, BYTE_EOT, lambda s: list(s.encode("utf-8")))


def _from_hf_tokenizers(tok, name: str) -> DataTokenizer:
    eot = None
    for cand in ("<|endoftext|>", "</s>", "<eos>", "<|im_end|>"):
        eot = tok.token_to_id(cand)
        if eot is not None:
            break
    if eot is None:
        eot = tok.get_vocab_size()  # no end-of-text token: one more id
        tok.add_special_tokens(["<|endoftext|>"])
    return DataTokenizer(name, tok.get_vocab_size(), eot, lambda s: tok.encode(s, add_special_tokens=False).ids,
                         tokenizer_json=tok.to_str(),
                         encode_batch=lambda xs: [e.ids for e in tok.encode_batch(xs, add_special_tokens=False)])


def from_file(path: str) -> DataTokenizer:
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(path)
    except Exception as e:  # the Rust tokenizers library reports every parse failure as a plain Exception
        raise SinklabError(f"tokenizer file {path} does not parse: {str(e).splitlines()[0][:100]}") from None
    return _from_hf_tokenizers(tok, f"file:{Path(path).name}")


def from_gguf(path: str) -> DataTokenizer:
    from transformers import AutoTokenizer

    try:
        hf = AutoTokenizer.from_pretrained(str(Path(path).parent), gguf_file=Path(path).name)
    # transformers' GGUF reader raises many types (ValueError, KeyError, struct.error) on a bad file
    except Exception as e:
        raise SinklabError(f"cannot read the tokenizer inside {path}: {str(e).splitlines()[0][:100]}") from None
    return _from_hf_tokenizers(hf.backend_tokenizer, f"gguf:{Path(path).name}")


def train_bpe(texts: Iterable[str], vocab_size: int) -> DataTokenizer:
    """A byte-level BPE trained on the corpus with HF `tokenizers`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return _from_hf_tokenizers(tok, f"bpe{vocab_size}")


def resolve(spec: str, texts_for_bpe: Callable[[], Iterable[str]] | None = None) -> DataTokenizer:
    """bytes | bpe:N | path/to/tokenizer.json | path/to/model.gguf"""
    if spec == "bytes":
        return byte_level()
    if spec.startswith("bpe:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            raise SinklabError(f"--tokenizer {spec!r}: expected bpe:N with N an integer") from None
        if n < 260:
            raise SinklabError("--tokenizer bpe:N needs N >= 260 (256 bytes plus merges)")
        return train_bpe(texts_for_bpe(), n)
    p = Path(spec)
    if not p.exists():
        raise SinklabError(f"--tokenizer {spec!r}: use bytes, bpe:N, a tokenizer.json or a .gguf file")
    if p.suffix == ".gguf":
        return from_gguf(spec)
    return from_file(spec)


def load_saved(folder: Path, manifest: dict) -> DataTokenizer:
    if manifest["tokenizer"] == "bytes":
        return byte_level()
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str((folder / "tokenizer.json").read_text())
    return DataTokenizer(manifest["tokenizer"], manifest["vocab_size"], manifest["eot_id"],
                         lambda s: tok.encode(s, add_special_tokens=False).ids, json.dumps(None))
