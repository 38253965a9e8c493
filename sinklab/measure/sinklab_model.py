"""sinklab's own decoder as a `LoadedModel`: its capture runs through the decoder's observation points.

Here, not in `model/checkpoint.py`, so the model layer imports nothing from the measurement.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..model.checkpoint import load_sinklm
from ..model.decoder import SinkLM
from .loaded import LoadedModel
from .probes import TextTokenizer, byte_tokenizer, from_hf_tokenizer


def checkpoint_tokenizer(folder: Path, vocab_size: int):
    tok_file = folder / "tokenizer.json"
    if tok_file.exists():
        from transformers import PreTrainedTokenizerFast

        return from_hf_tokenizer(PreTrainedTokenizerFast(tokenizer_file=str(tok_file)), vocab_size)
    if vocab_size <= 256 + 8:
        return byte_tokenizer(vocab_size=vocab_size)
    return None


def wrap_sinklab_model(model: SinkLM, tokenizer=None, name: str | None = None, info: dict | None = None) -> LoadedModel:
    """A `LoadedModel` whose capture runs through the decoder's own observation points."""
    cfg = model.cfg
    if tokenizer is None:
        tokenizer = byte_tokenizer(vocab_size=cfg.vocab_size) if cfg.vocab_size <= 264 else \
            TextTokenizer(encode=None, vocab_size=cfg.vocab_size, bos_id=None, adds_bos=False)

    def capture_forward(input_ids, recorder):
        recorder.reset()
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                model.hidden_states(input_ids.to(next(model.parameters()).device), recorder=recorder)
        finally:
            model.train(was_training)

    return LoadedModel(name=name or "sinklab model", kind="sinklab", model=model, tokenizer=tokenizer,
                       max_context=cfg.max_seq_len, n_layers=cfg.n_layers, capture_forward=capture_forward,
                       info=dict(info or {}, config=cfg.to_dict()))


def load_for_measurement(folder, device="cpu", dtype=torch.float32) -> LoadedModel:
    folder = Path(folder)
    model = load_sinklm(folder, device, dtype)
    tok = checkpoint_tokenizer(folder, model.cfg.vocab_size)
    return wrap_sinklab_model(model, tok, name=str(folder), info={"checkpoint": str(folder)})
