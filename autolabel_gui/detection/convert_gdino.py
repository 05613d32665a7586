"""Turn an original Grounding DINO checkpoint (groundingdino's state dict) into a transformers model folder.

The two implementations name the same weights differently; the renames are a table of
(pattern, replacement) rules applied in order (``RENAMES``), plus one structural change: the
original Swin keeps each attention block's query, key and value in one ``qkv`` matrix, which
transformers' Swin splits in three. The transformers config is derived from the original config
file (read as literal assignments, never executed): hidden size, layer and query counts, heads,
sampling points, the Swin variant named by ``backbone`` (``SWIN_VARIANTS``) and the input size.
Cross-checked against transformers' own conversion script (which hard-codes T and B); this
module is written independently and covers every original config knob that changes shapes.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autolabel_gui.core.atomic import staged_folder
from autolabel_gui.detection.base import DetectorUnavailable
from autolabel_gui.detection.text_encoder import load_tokenizer

SWIN_VARIANTS: dict[str, dict[str, Any]] = {
    "swin_T_224_1k": {"embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24], "window_size": 7,
                      "image_size": 224},
    "swin_B_224_22k": {"embed_dim": 128, "depths": [2, 2, 18, 2], "num_heads": [4, 8, 16, 32], "window_size": 7,
                       "image_size": 224},
    "swin_B_384_22k": {"embed_dim": 128, "depths": [2, 2, 18, 2], "num_heads": [4, 8, 16, 32], "window_size": 12,
                       "image_size": 384},
    "swin_L_224_22k": {"embed_dim": 192, "depths": [2, 2, 18, 2], "num_heads": [6, 12, 24, 48], "window_size": 7,
                       "image_size": 224},
    "swin_L_384_22k": {"embed_dim": 192, "depths": [2, 2, 18, 2], "num_heads": [6, 12, 24, 48], "window_size": 12,
                       "image_size": 384},
}
"""The groundingdino package picks Swin sizes by ``backbone`` name; the same table, as data."""

_SWIN = "model.backbone.conv_encoder.model"
_BLOCK = r"backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\."
_HF_BLOCK = _SWIN + r".encoder.layers.\1.blocks.\2."
_ENC = r"transformer\.encoder\."
_FUSION_PROJ = {"v": "vision", "l": "text", "values_v": "values_vision", "values_l": "values_text",
                "out_v": "out_vision", "out_l": "out_text"}
RENAMES: list[tuple[str, str | Callable[[re.Match[str]], str]]] = [
    # Swin backbone
    (r"^backbone\.0\.patch_embed\.proj\.", _SWIN + ".embeddings.patch_embeddings.projection."),
    (r"^backbone\.0\.patch_embed\.norm\.", _SWIN + ".embeddings.norm."),
    ("^" + _BLOCK + r"norm1\.", _HF_BLOCK + "layernorm_before."),
    ("^" + _BLOCK + r"norm2\.", _HF_BLOCK + "layernorm_after."),
    ("^" + _BLOCK + r"attn\.relative_position_bias_table$", _HF_BLOCK + "attention.self.relative_position_bias_table"),
    ("^" + _BLOCK + r"attn\.proj\.", _HF_BLOCK + "attention.output.dense."),
    ("^" + _BLOCK + r"mlp\.fc1\.", _HF_BLOCK + "intermediate.dense."),
    ("^" + _BLOCK + r"mlp\.fc2\.", _HF_BLOCK + "output.dense."),
    (r"^backbone\.0\.layers\.(\d+)\.downsample\.", _SWIN + r".encoder.layers.\1.downsample."),
    # the original's norm{i} follows stage i (0-based); transformers names stages from 1 (stem = 0)
    (r"^backbone\.0\.norm(\d+)\.", lambda m: f"{_SWIN}.hidden_states_norms.stage{int(m.group(1)) + 1}."),
    # encoder: deformable image layers, text enhancer layers, fusion layers
    (_ENC + r"layers\.(\d+)\.self_attn\.", r"model.encoder.layers.\1.deformable_layer.self_attn."),
    (_ENC + r"layers\.(\d+)\.norm1\.", r"model.encoder.layers.\1.deformable_layer.self_attn_layer_norm."),
    (_ENC + r"layers\.(\d+)\.linear(\d)\.", r"model.encoder.layers.\1.deformable_layer.fc\2."),
    (_ENC + r"layers\.(\d+)\.norm2\.", r"model.encoder.layers.\1.deformable_layer.final_layer_norm."),
    (_ENC + r"text_layers\.(\d+)\.self_attn\.", r"model.encoder.layers.\1.text_enhancer_layer.self_attn."),
    (_ENC + r"text_layers\.(\d+)\.linear(\d)\.", r"model.encoder.layers.\1.text_enhancer_layer.fc\2."),
    (_ENC + r"text_layers\.(\d+)\.norm1\.", r"model.encoder.layers.\1.text_enhancer_layer.layer_norm_before."),
    (_ENC + r"text_layers\.(\d+)\.norm2\.", r"model.encoder.layers.\1.text_enhancer_layer.layer_norm_after."),
    (_ENC + r"fusion_layers\.(\d+)\.gamma_v$", r"model.encoder.layers.\1.fusion_layer.vision_param"),
    (_ENC + r"fusion_layers\.(\d+)\.gamma_l$", r"model.encoder.layers.\1.fusion_layer.text_param"),
    (_ENC + r"fusion_layers\.(\d+)\.layer_norm_v\.", r"model.encoder.layers.\1.fusion_layer.layer_norm_vision."),
    (_ENC + r"fusion_layers\.(\d+)\.layer_norm_l\.", r"model.encoder.layers.\1.fusion_layer.layer_norm_text."),
    (_ENC + r"fusion_layers\.(\d+)\.attn\.(v|l|values_v|values_l|out_v|out_l)_proj\.",
     lambda m: f"model.encoder.layers.{m.group(1)}.fusion_layer.attn.{_FUSION_PROJ[m.group(2)]}_proj."),
    # decoder
    (r"transformer\.decoder\.layers\.(\d+)\.cross_attn\.", r"model.decoder.layers.\1.encoder_attn."),
    (r"transformer\.decoder\.layers\.(\d+)\.norm1\.", r"model.decoder.layers.\1.encoder_attn_layer_norm."),
    (r"transformer\.decoder\.layers\.(\d+)\.ca_text\.", r"model.decoder.layers.\1.encoder_attn_text."),
    (r"transformer\.decoder\.layers\.(\d+)\.catext_norm\.", r"model.decoder.layers.\1.encoder_attn_text_layer_norm."),
    (r"transformer\.decoder\.layers\.(\d+)\.self_attn\.", r"model.decoder.layers.\1.self_attn."),
    (r"transformer\.decoder\.layers\.(\d+)\.norm2\.", r"model.decoder.layers.\1.self_attn_layer_norm."),
    (r"transformer\.decoder\.layers\.(\d+)\.linear(\d)\.", r"model.decoder.layers.\1.fc\2."),
    (r"transformer\.decoder\.layers\.(\d+)\.norm3\.", r"model.decoder.layers.\1.final_layer_norm."),
    (r"^transformer\.decoder\.norm\.", "model.decoder.layer_norm."),
    (r"^transformer\.decoder\.ref_point_head\.", "model.decoder.reference_points_head."),
    (r"^transformer\.decoder\.bbox_embed\.", "model.decoder.bbox_embed."),
    (r"^transformer\.enc_out_bbox_embed\.", "model.encoder_output_bbox_embed."),
    (r"^transformer\.enc_output(_norm)?\.", r"model.enc_output\1."),
    (r"^transformer\.level_embed$", "model.level_embed"),
    (r"^transformer\.tgt_embed\.", "model.query_position_embeddings."),
    # text encoder, projections, heads
    (r"^bert\.", "model.text_backbone."),
    (r"^feat_map\.", "model.text_projection."),
    (r"^input_proj\.", "model.input_proj_vision."),
    (r"^bbox_embed\.", "bbox_embed."),
]

_IN_PROJ = re.compile(r"\.in_proj_(weight|bias)$")
_QKV = re.compile(_BLOCK + r"attn\.qkv\.(weight|bias)$")
_DROPPED = re.compile(r"(attn_mask|relative_position_index|position_ids|bert\.pooler\..*)$")
"""Buffers the model recomputes, and BERT's pooler, which Grounding DINO never uses."""


def read_original_config(path: Path) -> dict[str, Any]:
    """Top-level ``name = literal`` assignments of an original config file; nothing is executed."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    values: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return values


def hf_config_kwargs(original: dict[str, Any], text_config: dict[str, Any]) -> dict[str, Any]:
    """``GroundingDinoConfig`` keyword arguments equivalent to an original config's values."""
    name = original.get("backbone", "swin_T_224_1k")
    if name not in SWIN_VARIANTS:
        raise ValueError(f"backbone {name!r} is not a Swin variant this converter knows: {', '.join(SWIN_VARIANTS)}")
    if original.get("two_stage_type", "standard") != "standard":
        raise ValueError(f"two_stage_type {original['two_stage_type']!r}: only 'standard' has a transformers model")
    interm = list(original.get("return_interm_indices", [1, 2, 3]))
    backbone = {"model_type": "swin", **SWIN_VARIANTS[name], "out_indices": [i + 1 for i in interm]}
    ffn = int(original.get("dim_feedforward", 2048))
    heads = int(original.get("nheads", 8))
    return {
        "backbone_config": backbone,
        "text_config": text_config,
        "d_model": int(original.get("hidden_dim", 256)),
        "num_queries": int(original.get("num_queries", 900)),
        "encoder_layers": int(original.get("enc_layers", 6)),
        "decoder_layers": int(original.get("dec_layers", 6)),
        "encoder_ffn_dim": ffn,
        "decoder_ffn_dim": ffn,
        "encoder_attention_heads": heads,
        "decoder_attention_heads": heads,
        "num_feature_levels": int(original.get("num_feature_levels", 4)),
        "encoder_n_points": int(original.get("enc_n_points", 4)),
        "decoder_n_points": int(original.get("dec_n_points", 4)),
        "max_text_len": int(original.get("max_text_len", 256)),
        "positional_embedding_temperature": float(original.get("pe_temperatureH", 20)),
        "decoder_bbox_embed_share": bool(original.get("dec_pred_bbox_embed_share", True)),
        "two_stage_bbox_embed_share": bool(original.get("two_stage_bbox_embed_share", False)),
        "embedding_init_target": bool(original.get("embed_init_tgt", True)),
        "query_dim": int(original.get("query_dim", 4)),
        "activation_function": str(original.get("transformer_activation", "relu")),
        "two_stage": True,
    }


def rename(key: str) -> str | None:
    """The transformers name of one original weight, or None when it has no counterpart."""
    if _DROPPED.search(key):
        return None
    for pattern, replacement in RENAMES:
        new, count = re.subn(pattern, replacement, key, count=1)
        if count:
            return new
    return key


def convert_state_dict(state: dict[str, Any], embed_dim: int) -> dict[str, Any]:
    """The original state dict under transformers' names; packed q/k/v matrices (Swin's ``qkv``,
    torch attention's ``in_proj``) split into the separate query, key and value transformers has."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        qkv = _QKV.search(key)
        if qkv:
            stage, block, kind = int(qkv.group(1)), qkv.group(2), qkv.group(3)
            size = embed_dim * 2**stage
            prefix = f"{_SWIN}.encoder.layers.{stage}.blocks.{block}.attention.self"
            for i, part in enumerate(("query", "key", "value")):
                out[f"{prefix}.{part}.{kind}"] = value[i * size:(i + 1) * size].clone()
            continue
        new = rename(key)
        packed = _IN_PROJ.search(new or "")
        if new is not None and packed:
            # torch's MultiheadAttention packs q, k, v in one in_proj; transformers keeps three Linears
            size = value.shape[0] // 3
            for i, part in enumerate(("query", "key", "value")):
                out[f"{new[:packed.start()]}.{part}.{packed.group(1)}"] = value[i * size:(i + 1) * size].clone()
        elif new is not None:
            out[new] = value
    return out


@dataclass(frozen=True, slots=True)
class ConversionReport:
    """What the conversion did not map, so a mismatched checkpoint is visible, not silently random."""

    out: Path
    unexpected: list[str]


def convert(checkpoint: Path, config_path: Path, text_encoder: Path, out: Path) -> ConversionReport:
    """Write a transformers GroundingDino folder (config, safetensors, tokenizer, preprocessor) to ``out``.

    Built in a staging folder beside ``out`` and renamed at the end (``core.atomic.staged_folder``):
    a conversion that fails half way leaves no folder that looks like a model. Raises ValueError
    when the checkpoint or config cannot be used, or the weights do not fit; FileExistsError when
    ``out`` holds anything (before any work).
    """
    with staged_folder(out) as stage:
        original = read_original_config(config_path)
        model, unexpected = _hf_model(checkpoint, config_path, original, text_encoder)
        model.save_pretrained(stage)
        try:
            tokenizer = load_tokenizer(text_encoder)
        except DetectorUnavailable as exc:  # its own code refused
            raise ValueError(str(exc)) from exc
        except Exception as exc:  # missing vocab files raise TypeError, others OSError or ValueError
            raise ValueError(f"{text_encoder}: no usable tokenizer in this folder ({exc})") from exc
        tokenizer.save_pretrained(stage)
        size = {"shortest_edge": int(original.get("image_size", 800)),
                "longest_edge": int(original.get("max_size", 1333))}
        (stage / "preprocessor_config.json").write_text(json.dumps({
            "image_processor_type": "GroundingDinoImageProcessor", "size": size,
            "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}, indent=2), encoding="utf-8")
    return ConversionReport(out, unexpected)


def _hf_model(checkpoint: Path, config_path: Path, original: dict[str, Any],
              text_encoder: Path) -> tuple[Any, list[str]]:
    """The transformers model holding the checkpoint's weights, and the weights it had no place for."""
    import torch
    from transformers import BertConfig, GroundingDinoConfig, GroundingDinoForObjectDetection

    text_config = BertConfig.from_pretrained(text_encoder, trust_remote_code=False).to_dict()
    config = GroundingDinoConfig(**hf_config_kwargs(original, text_config))
    try:
        checkpoint_data = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a checkpoint, pickled objects
        raise ValueError(f"{checkpoint}: not a readable PyTorch checkpoint ({exc})") from exc
    state = checkpoint_data.get("model", checkpoint_data) if isinstance(checkpoint_data, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{checkpoint}: holds no model weights (expected {{'model': state_dict}})")
    model = GroundingDinoForObjectDetection(config).eval()
    converted = convert_state_dict(state, config.backbone_config.embed_dim)
    try:
        result = model.load_state_dict(converted, strict=False)
    except RuntimeError as exc:
        raise ValueError(
            f"{checkpoint}: does not fit {config_path.name} (wrong model size?): {str(exc)[:500]}") from exc
    buffers = {name for name, _ in model.named_buffers()}
    missing = [k for k in result.missing_keys if k not in buffers]
    if missing:
        raise ValueError(f"{checkpoint}: {len(missing)} weights of the model are not in it (e.g. {missing[:3]})")
    return model, list(result.unexpected_keys)
