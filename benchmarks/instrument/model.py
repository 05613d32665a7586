"""The instrument's architecture: the package's Grounding DINO, with a smaller Swin and tiny BERT.

The package picks Swin's sizes by backbone name (``build_swin_transformer``'s own table), and
Swin-T costs seconds per training step on two cores. ``small_swin`` swaps, for the duration of a
``with`` block, the builder the package's ``build_backbone`` calls for ``swin_T_224_1k`` by one
that builds the same ``SwinTransformer`` class with the sizes given. Training and every process
that loads the instrument (through the product's own detector) build the model inside it; without
it, loading fails loudly on the weights' shapes instead of silently using other sizes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks.instrument.scenes import SceneSpec

# Swin-T's layout at half the width and a third of the depth (3.2M parameters instead of 28M);
# no stochastic depth: a short run converges faster without it.
SWIN_SIZES: dict[str, Any] = {
    "embed_dim": 48, "depths": [1, 1, 2, 1], "num_heads": [2, 4, 8, 16], "window_size": 7, "drop_path_rate": 0.0,
}


@dataclass(frozen=True)
class InstrumentSpec:
    """Everything that decides the trained weights; its hash names the cache folder."""

    scenes: SceneSpec = field(default_factory=SceneSpec)
    swin: dict[str, Any] = field(default_factory=lambda: dict(SWIN_SIZES))
    overrides: dict[str, Any] = field(
        default_factory=lambda: {
            "dim_feedforward": 256,
            "enc_layers": 1,
            "dec_layers": 2,
            "num_queries": 40,
            "use_checkpoint": False,
            "use_transformer_ckpt": False,
            "fusion_droppath": 0.0,
        }
    )
    bert_hidden: int = 64
    steps: int = 3300  # what 28 quiet minutes reach at batch 8 (0.47 s a step), so the cosine ends at ~0
    batch: int = 8
    lr: float = 2e-4
    warmup: int = 100
    prior: float = 0.01  # initial class probability (focal loss's prior), folded into LayerNorm biases
    min_side: int = 64  # half the steps train at a random side in [min_side, size) (preview sizes)
    seed: int = 0
    version: int = 5  # 2: one-to-many encoder loss; 3: 3000 steps; 4: text encoder frozen; 5: prior, scales

    def key(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def with_(self, **changes: Any) -> InstrumentSpec:
        return replace(self, **changes)


@contextlib.contextmanager
def small_swin(sizes: dict[str, Any]) -> Iterator[None]:
    """While inside, the package builds ``swin_T_224_1k`` with ``sizes`` (same class, other sizes)."""
    from groundingdino.models.GroundingDINO.backbone import backbone, swin_transformer

    original = backbone.build_swin_transformer

    def build(modelname: str, pretrain_img_size: int, **kw: Any):
        return swin_transformer.SwinTransformer(pretrain_img_size=pretrain_img_size, **{**sizes, **kw})

    backbone.build_swin_transformer = build
    try:
        yield
    finally:
        backbone.build_swin_transformer = original


@dataclass(frozen=True)
class Instrument:
    """A built instrument's files, and a DetectorConfig that loads it through the product."""

    folder: Path
    spec: InstrumentSpec

    @property
    def config_path(self) -> Path:
        return self.folder / "gdino_config.py"

    @property
    def weights_path(self) -> Path:
        return self.folder / "instrument.pth"

    @property
    def text_encoder_dir(self) -> Path:
        return self.folder / "bert"

    @property
    def classes(self) -> tuple[str, ...]:
        return self.spec.scenes.classes

    def detector_config(self, **overrides: Any):
        """The test model's fp32 CPU config, pointed at this instrument's files."""
        from tests.fixtures.tiny_gdino import TinyGdino

        return TinyGdino(self.config_path, self.weights_path, self.text_encoder_dir).detector_config(**overrides)

    def detector(self, **overrides: Any):
        """The product's detector for this instrument (built inside ``small_swin``)."""
        from autolabel_gui.detection.catalogue import create_detector

        with small_swin(self.spec.swin):
            return create_detector(self.detector_config(**overrides))


def build_text_encoder(dest: Path, classes: tuple[str, ...], hidden: int) -> Path:
    """A small random BERT whose vocab has each class name as one word (bert-base's special ids kept)."""
    import torch
    from tests.fixtures.tiny_gdino import tiny_vocab
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = tiny_vocab()
    missing = [c for c in classes if c not in vocab]
    free = [i for i, tok in enumerate(vocab) if tok.startswith("[unused")]
    for idx, word in zip(free, missing):
        vocab[idx] = word
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=hidden * 2, max_position_embeddings=512,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(dest)
    BertTokenizerFast(vocab_file=str(dest / "vocab.txt"), do_lower_case=True).save_pretrained(dest)
    return dest


def write_files(folder: Path, spec: InstrumentSpec) -> Instrument:
    """Text encoder and config (the package's SwinT-OGC with the spec's overrides and input size)."""
    from tests.fixtures.tiny_gdino import write_config

    inst = Instrument(Path(folder), spec)
    build_text_encoder(inst.text_encoder_dir, spec.scenes.classes, spec.bert_hidden)
    size = spec.scenes.size
    write_config(inst.config_path, inst.text_encoder_dir, {**spec.overrides, "image_size": size, "max_size": size})
    return inst


def build_model(inst: Instrument):
    """A freshly initialised package model for ``inst``'s config (seeded)."""
    import io

    import torch
    from groundingdino.models import build_model as package_build
    from groundingdino.util.slconfig import SLConfig

    args = SLConfig.fromfile(str(inst.config_path))
    args.device = "cpu"
    torch.manual_seed(inst.spec.seed)
    with small_swin(inst.spec.swin), contextlib.redirect_stdout(io.StringIO()):
        return package_build(args)


def load_instrument(folder: Path | str) -> Instrument:
    """The instrument built earlier in ``folder`` (its spec read back from ``spec.json``)."""
    from benchmarks.instrument.scenes import SceneSpec

    folder = Path(folder)
    raw = json.loads((folder / "spec.json").read_text(encoding="utf-8"))
    scenes = raw.pop("scenes")
    scenes["classes"] = tuple(scenes["classes"])
    return Instrument(folder, InstrumentSpec(scenes=SceneSpec(**scenes), **raw))
