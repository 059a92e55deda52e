"""Inference precision for ROC models: float32, bfloat16 encoders, int8 dynamic quantization, float32 in ONNX Runtime,
and `"auto"`.

Users run relation extraction over many posts on CPUs, where precision is the knob that matters most: the text encoder
is 85% of extraction time (docs/speed.md). Each option here returns a model for inference without changing the one
given, so a server can keep its float32 model. Speed and F1 against float32 on the shipped default's three seeds are in
`benchmarks/results/int8_schemes_default_seed*.json`.

This file is copied next to the weights by `save_pretrained` (remote code; `pipeline_roc.py` imports it): it imports
only `torch`, `transformers` and the standard library (`onnxruntime` and `onnx` only when `"onnxruntime"` is used).
"""

from __future__ import annotations

import copy
import fnmatch
import importlib.util
import inspect
import io
import warnings
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput


if TYPE_CHECKING:
    from .modeling_roc import ROCModel


PRECISIONS = ("auto", "float32", "bfloat16", "int8", "onnxruntime")

# CPU vendors where ONNX Runtime's float32 beat torch's: an AMD EPYC with AVX2 only, the MiniLM-L6 encoder 2.03x with
# identical outputs (issue 39). On the Intel Xeon with AMX it was slower (0.83x; bfloat16 wins there) and other
# families are not measured, so `"auto"` keeps torch on them: never slower than float32 torch where not measured.
ONNXRUNTIME_FASTER_ON = ("AuthenticAMD",)


# What bfloat16 costs where the CPU emulates it (an AMD EPYC with AVX2 only, torch 2.14.1, 2 threads; issue 39).
BFLOAT16_EMULATED = (
    "bfloat16 is emulated there: measured 2-4x slower than float32 for inference, and a training step 13x slower "
    "(294 s against 22 s)."
)


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX). Elsewhere bfloat16 matrix products are
    emulated: measured on an AMD EPYC with AVX2 only, inference 2-4x slower than float32 (`BFLOAT16_EMULATED`), so
    `"auto"` never picks bfloat16 there."""
    is_avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    is_amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((is_avx512_bf16 is not None and is_avx512_bf16()) or (is_amx is not None and is_amx()))


@cache
def cpu_vendor() -> str:
    """The CPU's vendor string (`GenuineIntel`, `AuthenticAMD`, ...) from /proc/cpuinfo; "" where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "vendor_id":
                    return value.strip()
    except OSError:
        pass
    return ""


def onnxruntime_available() -> bool:
    """Whether `precision="onnxruntime"` can run here: ONNX Runtime and the ONNX exporter's `onnx` are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """The concrete precision (`"float32"`, `"bfloat16"`, `"int8"` or `"onnxruntime"`) `precision` means on `device`.

    `"auto"`, by what the CPU has: `"bfloat16"` (`bfloat16_encoders`) with hardware bfloat16 (AVX-512 BF16 / AMX);
    `"onnxruntime"` (`onnxruntime_text_encoder`) on a CPU family where it was measured faster than torch
    (`ONNXRUNTIME_FASTER_ON`) when ONNX Runtime is installed (`pip install "roc-mre[onnx]"`); `"float32"` everywhere
    else, a GPU included (bfloat16 there is not measured by this project yet). Raises `ValueError` for an unknown name
    or int8 / ONNX Runtime off the CPU.
    """
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {', '.join(PRECISIONS)}; got {precision!r}.")
    if precision == "auto":
        if device.type != "cpu":
            return "float32"
        if cpu_has_native_bfloat16():
            return "bfloat16"
        if cpu_vendor() in ONNXRUNTIME_FASTER_ON and onnxruntime_available():
            return "onnxruntime"
        return "float32"
    if precision == "int8" and device.type != "cpu":
        raise ValueError(f"int8 dynamic quantization runs on CPU only; the model is on {device}.")
    if precision == "onnxruntime" and device.type != "cpu":
        raise ValueError(
            f"precision='onnxruntime' runs on CPU only (its CPU execution provider); the model is on {device}."
        )
    return precision


def for_inference(model: ROCModel, precision: str = "auto") -> ROCModel:
    """`model` in eval mode at `precision` (see `resolve_precision`): the model itself, as given, for `"float32"`
    (with `"auto"`, a model already cast to another dtype stays so), else a copy from
    `bfloat16_encoders` or `quantize_int8`; `"float32"` named explicitly scores a float32 copy of a model loaded in
    another dtype. A bfloat16 request on a CPU without hardware bfloat16 is honoured
    with a warning (it runs slower than float32 there)."""
    resolved = resolve_precision(precision, model.device)
    if resolved == "bfloat16" and model.device.type == "cpu" and not cpu_has_native_bfloat16():
        warnings.warn(
            f"precision='bfloat16' on a CPU without hardware bfloat16 (AVX-512 BF16 / AMX): {BFLOAT16_EMULATED} "
            "Use precision='auto' or 'float32'.",
            stacklevel=2,
        )
    if resolved == "bfloat16":
        return bfloat16_encoders(model)
    if resolved == "int8":
        return quantize_int8(model)
    if resolved == "onnxruntime":
        return onnxruntime_text_encoder(model)
    if precision == "float32" and model.dtype != torch.float32:
        # asked for by name: a model loaded with dtype=torch.bfloat16 is scored by a float32 copy, as asked
        return copy.deepcopy(model).float().eval()
    return model.eval()


class InferenceCopy:
    """`model` at `precision` (`for_inference`), made again whenever the given model's config or weights changed
    (`set_relation_bank`, `load_state_dict`, a training step: each bumps a tensor's version), so that a bfloat16,
    int8 or ONNX Runtime copy never scores with an older bank or older weights. The pipelines and the extractor hold
    one; `.model` is what they score with."""

    def __init__(self, model: ROCModel, precision: str = "auto"):
        self.source, self.precision = model, precision
        self._made = (None, None)  # (the source's config and weight versions, the copy made from them)
        self.model  # noqa: B018 - made now, so that a bad `precision` fails here, in one line

    @property
    def model(self) -> ROCModel:
        state = (self.source.config.to_json_string(), tuple(p._version for p in self.source.parameters()))
        if self._made[0] != state:
            self._made = (state, for_inference(self.source, self.precision))
        return self._made[1]


def precision_from_quantize(precision: str, quantize: str | None) -> str:
    """`precision`, or what the older `quantize="int8"` keyword means (with a `FutureWarning`); the two disagreeing is
    an error. One place for the alias, shared by the pipelines and the extractor."""
    if quantize is None:
        return precision
    if quantize != "int8":
        raise ValueError(f"`quantize` must be None or 'int8', got {quantize!r}.")
    if precision not in ("auto", "int8"):
        raise ValueError(f"`quantize='int8'` and `precision={precision!r}` disagree; pass `precision` only.")
    warnings.warn("`quantize='int8'` is deprecated; pass `precision='int8'`.", FutureWarning, stacklevel=3)
    return "int8"


def bfloat16_encoders(model: ROCModel) -> ROCModel:
    """A copy of `model` for inference whose encoders (text, vision) and fusion layers run in bfloat16.

    They are where the time goes (the text encoder alone is 85% of extraction); the pair head, the description encoder
    and the cached relation bank stay float32 and read the fused entity markers cast back to float32, so the cosine
    retrieval and its temperature keep full precision. Casting those too (the whole model) cost up to 0.36 F1 for
    little more speed. Measured on the shipped default's three seeds (`int8_schemes_default_seed*_precision.json`,
    scheme `bfloat16_encoders`). Works on CPU and GPU.
    """
    converted = copy.deepcopy(model).eval()
    for encoder in (converted.text_model, converted.vision_model, converted.vision_proj, converted.fusion):
        if encoder is not None:
            encoder.to(torch.bfloat16)
    return converted


# The text encoder's linear layers that int8 hurts most, kept in float32 by default: the feed-forward layers of its
# first two layers, whose inputs (post-GELU activations with a few very large channels) lose the most to a per-batch
# int8 scale. Chosen from the layer sensitivity of the shipped default (seed 42) on training examples and checked on
# its seed-43/44 retrainings (`benchmarks/results/int8_schemes_default_seed*.json`, scheme `per_channel_rule`).
INT8_KEEP_FLOAT = ("text_model.encoder.layer.[01].intermediate.dense", "text_model.encoder.layer.[01].output.dense")


def quantize_int8(model: ROCModel, per_channel: bool = True, keep_float: Sequence[str] = INT8_KEEP_FLOAT) -> ROCModel:
    """A copy of `model` for CPU inference with int8 dynamic quantization of its `nn.Linear` layers.

    Weights are stored as int8 and activations quantized per batch at run time (`torch.ao.quantization.
    quantize_dynamic`): the encoders' attention projections and feed-forward layers and the pair head; embeddings,
    norms and the fusion layers stay float32. The result is in
    eval mode and cannot be trained, saved or moved to a GPU.

    `per_channel` (default) gives every output row of a weight its own scale: MiniLM's feed-forward weights have rows
    of very different ranges, and one scale per matrix (`per_channel=False`) costs several times more F1 on MNRE.
    `keep_float` names linear layers to leave in float32 (`fnmatch` patterns over module names; default
    `INT8_KEEP_FLOAT`, the first two text-encoder layers' feed-forward; `()` quantizes every one): the few whose
    quantization flips the most predictions. Speed and F1 against float32 are measured in
    `benchmarks/results/int8_schemes_*.json`. The quantized kernels are torch's current
    `torch.backends.quantized.engine`; on CPUs with AMX or VNNI, `"onednn"` is faster (set it before quantizing).
    """
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    if model.device.type != "cpu":
        raise ValueError(f"int8 dynamic quantization runs on CPU only; the model is on {model.device}.")
    if isinstance(keep_float, str):
        raise TypeError("`keep_float` must be a sequence of module-name patterns, not one string.")
    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    # The fusion layers (`nn.TransformerEncoderLayer`) stay float32: their fast inference path reads `linear1.weight`
    # as a tensor, which a quantized linear does not have, and they are under 5% of the time (docs/speed.md).
    fusion = {
        f"{name}.{child}" for name, module in model.named_modules() if isinstance(module, nn.TransformerEncoderLayer)
        for child, _ in module.named_modules()
    }  # fmt: skip
    spec = {
        name: qconfig
        for name, module in model.named_modules()
        if type(module) is nn.Linear  # exact: the attention's output projection subclasses it for the fused kernel
        and name not in fusion
        and not any(fnmatch.fnmatchcase(name, pattern) for pattern in keep_float)
    }
    with warnings.catch_warnings():
        # torch marks the eager-mode API deprecated in favour of torchao, which is not a dependency here
        warnings.filterwarnings("ignore", message=".*deprecated.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*deprecated.*", category=DeprecationWarning)
        quantized = quantize_dynamic(model, spec, dtype=torch.qint8, inplace=False)
    quantized.inference_only = "int8"  # `ROCModel.train` refuses: its weights are packed int8, without gradients
    return quantized.eval()


class _LastHiddenState(nn.Module):
    """What the exporter traces: the encoder called by keyword (its positional order differs between models and
    transformers versions), returning only `last_hidden_state`, the one output ROC reads."""

    def __init__(self, encoder: nn.Module, input_names: Sequence[str]):
        super().__init__()
        self.encoder, self.input_names = encoder, tuple(input_names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.encoder(**dict(zip(self.input_names, inputs))).last_hidden_state


class OnnxRuntimeEncoder(nn.Module):
    """A text encoder exported to ONNX (in memory, nothing written to disk) and run by ONNX Runtime's CPU execution
    provider, in float32: called like the transformers module it replaces, it returns the same `last_hidden_state`
    (to about 1e-5). Its hidden states per layer and attentions are not exported: asking for them is an error."""

    def __init__(self, encoder: nn.Module, threads: int | None = None):
        super().__init__()
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError(
                "precision='onnxruntime' needs ONNX Runtime and onnx: pip install \"roc-mre[onnx]\""
            ) from error
        accepted = inspect.signature(encoder.forward).parameters
        self.input_names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in accepted]
        self.config = encoder.config
        sample = {name: torch.ones(2, 8, dtype=torch.long) for name in self.input_names}
        buffer = io.BytesIO()
        dynamic = {name: {0: "batch", 1: "sequence"} for name in (*self.input_names, "last_hidden_state")}
        with warnings.catch_warnings():
            # torch's TorchScript-based exporter warns that a newer one exists; it is the one that needs no onnxscript
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _LastHiddenState(copy.deepcopy(encoder).float().eval(), self.input_names),
                tuple(sample.values()),
                buffer,
                input_names=self.input_names,
                output_names=["last_hidden_state"],
                dynamic_axes=dynamic,
                opset_version=17,
                dynamo=False,
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: its notices would reach every user's log
        self.session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        **unused,
    ) -> BaseModelOutput:
        if output_hidden_states or output_attentions:
            raise ValueError(
                "precision='onnxruntime' returns the last hidden state only; use precision='float32' for hidden "
                "states or attentions."
            )
        given = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids) if attention_mask is None else attention_mask,
            "token_type_ids": torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids,
        }
        feed = {name: given[name].detach().cpu().to(torch.int64).numpy() for name in self.input_names}
        (states,) = self.session.run(["last_hidden_state"], feed)
        return BaseModelOutput(last_hidden_state=torch.from_numpy(states))


def onnxruntime_text_encoder(model: ROCModel, threads: int | None = None) -> ROCModel:
    """A float32 copy of `model` for CPU inference whose text encoder (85% of extraction time) runs in ONNX Runtime.

    The same arithmetic as float32 torch (outputs equal to about 1e-5, so the same predictions), in kernels tuned
    per CPU: on an AMD EPYC with AVX2 only the MiniLM-L6 encoder ran 2.03x torch's float32, on the Intel Xeon with
    AMX 0.83x (issue 39; `benchmarks/results/int8_schemes_*onnx*.json`). The rest of the model (fusion, pair head,
    retrieval) stays in torch. Needs `pip install "roc-mre[onnx]"`; the copy cannot be trained or saved.
    """
    if model.device.type != "cpu":
        raise ValueError(f"precision='onnxruntime' runs on CPU only; the model is on {model.device}.")
    converted = copy.deepcopy(model).float().eval()
    converted.text_model = OnnxRuntimeEncoder(converted.text_model, threads)
    converted.inference_only = "ONNX Runtime"  # `ROCModel.train` refuses: the text encoder has no torch weights
    return converted


__all__ = [
    "BFLOAT16_EMULATED",
    "INT8_KEEP_FLOAT",
    "InferenceCopy",
    "ONNXRUNTIME_FASTER_ON",
    "PRECISIONS",
    "OnnxRuntimeEncoder",
    "bfloat16_encoders",
    "cpu_has_native_bfloat16",
    "cpu_vendor",
    "for_inference",
    "onnxruntime_available",
    "onnxruntime_text_encoder",
    "precision_from_quantize",
    "quantize_int8",
    "resolve_precision",
]
