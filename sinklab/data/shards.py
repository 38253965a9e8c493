"""Token shards: one memory-mapped array per split, plus a manifest (tokenizer, vocabulary, counts, hash)."""
from __future__ import annotations

import glob
import hashlib
import json
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import SinklabError
from ..files import claim_output_folder, read_text, staged_folder
from . import tokenizers

MANIFEST = "manifest.json"


def shard_dtype(vocab_size: int, dtype: str | None = None) -> np.dtype:
    dt = np.dtype(dtype) if dtype else (np.dtype(np.uint16) if vocab_size <= 65536 else np.dtype(np.uint32))
    if vocab_size - 1 > np.iinfo(dt).max:
        raise SinklabError(f"vocabulary of {vocab_size} does not fit the shard dtype {dt.name} "
                           f"(max id {np.iinfo(dt).max})")
    return dt


def iter_documents(inputs: list[str], text_field: str = "text", encoding_errors: str = "strict") -> Iterator[str]:
    """Text files and globs (one document per file), .jsonl (one per line), or a Hugging Face dataset:
    a folder (from `save_to_disk`, or of data files) or a hub name. Files are UTF-8: a bad byte is
    an error naming the file and offset unless encoding_errors="replace"."""
    paths: list[str] = []
    for spec in inputs:
        if os.path.isdir(spec):
            yield from _hf_dataset(spec, text_field)
            continue
        matched = sorted(glob.glob(spec, recursive=True))
        if not matched and not os.path.exists(spec):
            if "/" not in spec.strip("/") or spec.count("/") == 1 and not spec.startswith((".", "/")):
                yield from _hf_dataset(spec, text_field)
                continue
            raise SinklabError(f"input {spec!r} matches no file")
        paths += [m for m in matched if os.path.isfile(m)] or ([spec] if os.path.isfile(spec) else [])
    for path in paths:
        text = read_text(path, encoding_errors)
        if path.endswith(".jsonl"):
            yield from _jsonl_documents(text, path, text_field)
        else:
            yield text


def _jsonl_documents(text: str, path: str, text_field: str) -> Iterator[str]:
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield str(json.loads(line)[text_field])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise SinklabError(f"{path}, line {i}: no {text_field!r} field") from None


def _hf_dataset(spec: str, text_field: str) -> Iterator[str]:
    try:
        import datasets
    except ImportError:
        raise SinklabError(f"input {spec!r} is not a file; reading HF datasets needs `pip install datasets`") from None
    try:
        saved = any(os.path.exists(os.path.join(spec, f)) for f in ("state.json", "dataset_dict.json"))
        # a folder from `save_to_disk`, else a folder of data files or a hub name (load_dataset)
        ds = datasets.load_from_disk(spec) if saved else datasets.load_dataset(spec, split="train")
    # datasets raises a different type per cause (missing, offline, bad builder): all one error here
    except Exception as e:
        raise SinklabError(f"cannot load dataset {spec!r}: {str(e).splitlines()[0][:120]}") from None
    if isinstance(ds, datasets.DatasetDict):
        ds = ds["train"] if "train" in ds else next(iter(ds.values()))
    if text_field not in ds.column_names:
        raise SinklabError(f"dataset {spec!r} has no {text_field!r} field (columns: {', '.join(ds.column_names)}); "
                           f"choose one with --text-field")
    for row in ds:
        yield str(row[text_field])


def prepare(inputs: list[str], out: str | os.PathLike, tokenizer: str = "bytes", val_fraction: float = 0.01,
            text_field: str = "text", max_bpe_chars: int = 50_000_000, progress: bool = True,
            max_chars: int | None = None, dtype: str | None = None, encoding_errors: str = "strict",
            overwrite: bool = False) -> dict:
    """Tokenise documents, join them with end-of-text, and write train/val shards plus the manifest.
    A folder that already holds prepared data is replaced only with `overwrite`."""
    if not 0 < val_fraction < 0.5:
        raise SinklabError(f"--val-fraction must lie in (0, 0.5) (got {val_fraction})")
    if max_chars is not None and max_chars < 1:
        raise SinklabError(f"--max-chars must be at least 1 (got {max_chars})")
    if dtype is not None:
        shard_dtype(1, dtype)
    out = claim_output_folder(out, MANIFEST, overwrite)  # checked now, written once the corpus has tokenised
    docs = _read_documents(inputs, text_field, encoding_errors, max_chars)

    def bpe_texts():
        budget = max_bpe_chars
        for d in docs:
            if budget <= 0:
                break
            yield d[:budget]
            budget -= len(d)

    tok = tokenizers.resolve(tokenizer, bpe_texts)
    dt = shard_dtype(tok.vocab_size, dtype)
    all_ids = _encode(tok, docs, dt, progress)
    n_val = max(1, int(len(all_ids) * val_fraction))
    if len(all_ids) < 2 * n_val + 2:
        raise SinklabError(f"the corpus is too small: {len(all_ids)} tokens")
    splits = {"train": all_ids[:-n_val], "val": all_ids[-n_val:]}
    manifest = {"tokenizer": tok.name, "vocab_size": tok.vocab_size, "eot_id": tok.eot_id, "dtype": dt.name,
                "tokens": {k: int(len(v)) for k, v in splits.items()}, "documents": len(docs),
                "sha256": _digest(splits), "inputs": inputs}
    write_prepared(out, splits, manifest, tok.tokenizer_json)
    return manifest


DATA_FILES = ("train.bin", "val.bin", "tokenizer.json", MANIFEST)


def _digest(splits: dict) -> str:
    h = hashlib.sha256()
    for arr in splits.values():
        h.update(arr.tobytes())
    return h.hexdigest()


def write_prepared(out: Path, splits: dict, manifest: dict, tokenizer_json: str | None = None) -> None:
    """The shards, tokenizer and manifest, written beside `out` and moved in together: a folder never
    holds one preparation's shards under another's manifest (or a stale tokenizer.json)."""
    with staged_folder(out) as staging:
        for name, arr in splits.items():
            arr.tofile(staging / f"{name}.bin")
        if tokenizer_json:
            (staging / "tokenizer.json").write_text(tokenizer_json)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        for name in DATA_FILES:  # an older preparation's file that this one has not: removed, not kept
            if not (staging / name).exists() and (Path(out) / name).exists():
                (Path(out) / name).unlink()


def _read_documents(inputs: list[str], text_field: str, encoding_errors: str, max_chars: int | None) -> list[str]:
    """The non-blank documents, stopping once `max_chars` characters are in."""
    docs, chars = [], 0
    for d in iter_documents(inputs, text_field, encoding_errors):
        if d.strip():
            docs.append(d)
            chars += len(d)
            if max_chars and chars >= max_chars:
                break
    if not docs:
        raise SinklabError(f"the corpus is empty: no text in {', '.join(inputs)}")
    return docs


def _encode(tok, docs: list[str], dt: np.dtype, progress: bool) -> np.ndarray:
    """Every document's ids followed by end-of-text, as one array; batched where the tokenizer can."""
    from tqdm.auto import tqdm

    ids: list[np.ndarray] = []
    chunk = 256
    bar = tqdm(total=len(docs), desc="tokenising", unit="doc",
               disable=not progress or os.environ.get("SINKLAB_NO_PROGRESS") == "1")
    for i in range(0, len(docs), chunk):
        part = docs[i:i + chunk]
        encoded = tok.encode_batch(part) if tok.encode_batch else [tok.encode(d) for d in part]
        ids += [np.asarray(e + [tok.eot_id], dtype=dt) for e in encoded]
        bar.update(len(part))
    bar.close()
    return np.concatenate(ids)


def open_split(folder: str | os.PathLike, split: str) -> tuple[np.memmap, dict]:
    """The split's tokens, memory-mapped, after checking the shard against its manifest: a file
    truncated or replaced since `data prepare` would otherwise train on other tokens silently."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    path = folder / f"{split}.bin"
    dt = np.dtype(manifest["dtype"])
    n = int(manifest["tokens"].get(split, 0))
    if not path.is_file():
        raise SinklabError(f"{path} is missing; prepare the data again")
    size = path.stat().st_size
    if n == 0 or size == 0:
        raise SinklabError(f"{path} is empty ({size} bytes, {n} tokens in its manifest); prepare more data")
    if size != n * dt.itemsize:
        raise SinklabError(f"{path} has {size:,} bytes but its manifest says {n:,} {dt.name} tokens "
                           f"({n * dt.itemsize:,} bytes): the shard was truncated or replaced; prepare the data again")
    return np.memmap(path, dtype=dt, mode="r"), manifest


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise SinklabError(f"{folder} has no {MANIFEST}: run `sinklab data prepare` first")
    try:
        manifest = json.loads(path.read_text())
        np.dtype(manifest["dtype"]), dict(manifest["tokens"]), int(manifest["vocab_size"])
    except (ValueError, KeyError, TypeError) as e:
        raise SinklabError(f"{path} is not a sinklab manifest ({type(e).__name__}: {e}); "
                           f"prepare the data again") from None
    return manifest


def document_starts(arr: np.ndarray, eot_id: int, n: int | None, T: int) -> np.ndarray:
    """(n, T) windows that each begin a document: the T tokens after an end-of-text token, from the
    first documents at least T long (n = None: all of them). This is the paper's probe (the first T
    tokens of each text); the trainer's default probe cuts windows at random offsets instead."""
    ends = np.flatnonzero(np.asarray(arr) == eot_id)  # a split may begin mid-document: skip to its first end
    starts, stops = ends[:-1] + 1, ends[1:]
    keep = starts[stops - starts >= T][:n]
    if not len(keep) or (n is not None and len(keep) < n):
        raise SinklabError(f"only {len(keep)} documents of at least {T} tokens; asked for {n}")
    return np.stack([np.asarray(arr[s:s + T], dtype=np.int64) for s in keep])
