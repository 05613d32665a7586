"""Train the instrument: the package's Grounding DINO (small sizes) on generated scenes, on CPU.

The package ships no loss and its forward drops the auxiliary outputs, so both are here: the
forward runs the product's own halves (``gdino_forward.encode_images``/``encode_text``) and the
package's transformer, then applies the heads to every decoder layer and to the two-stage encoder
proposals; the loss is DINO's set loss, written from the formulas: Hungarian matching
(scipy) on focal class cost + L1 + GIoU, then sigmoid focal loss over the caption's tokens (a
target's tokens are its class's span, as ``class_scoring`` reads them) + L1 + GIoU per layer.

Captions are built by the product's ``build_chunks`` from a shuffled (sometimes partial) class
list, so training reads class spans exactly as detection will. Scenes are generated on the fly
(scene number = step * batch + i), so there is no epoch and no overfitting to a fixed set.

    python -m benchmarks.instrument.train [--cache DIR] [--max-minutes 30] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from benchmarks.instrument.model import Instrument, InstrumentSpec, build_model, write_files
from benchmarks.instrument.scenes import Scene, make_scene
from scipy.optimize import linear_sum_assignment
from torchvision.ops import generalized_box_iou

DEFAULT_CACHE = Path("~/.cache/autolabel-gui-bench/instrument").expanduser()
HELD_OUT_FIRST = 10_000_000  # held-out scenes are numbered from here; training never gets there
COST_CLASS, COST_L1, COST_GIOU = 2.0, 5.0, 2.0
ALPHA, GAMMA = 0.25, 2.0
DENSE_K = 6  # encoder tokens per target in the one-to-many loss


def _xyxy(b: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def focal(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sigmoid focal loss, elementwise (RetinaNet's, alpha 0.25, gamma 2)."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    alpha_t = ALPHA * targets + (1 - ALPHA) * (1 - targets)
    return alpha_t * ce * (1 - p_t) ** GAMMA


@torch.no_grad()
def match(logits: torch.Tensor, boxes: torch.Tensor, token_map: torch.Tensor, target_boxes: torch.Tensor):
    """Hungarian matching of one image: (query indices, target indices)."""
    if target_boxes.shape[0] == 0:
        return np.zeros(0, int), np.zeros(0, int)
    prob = logits.sigmoid()
    neg = (1 - ALPHA) * prob**GAMMA * -(1 - prob + 1e-8).log()
    pos = ALPHA * (1 - prob) ** GAMMA * -(prob + 1e-8).log()
    weights = token_map / token_map.sum(1, keepdim=True)
    cost = (
        COST_CLASS * (pos - neg) @ weights.T
        + COST_L1 * torch.cdist(boxes, target_boxes, p=1)
        - COST_GIOU * generalized_box_iou(_xyxy(boxes), _xyxy(target_boxes))
    )
    return linear_sum_assignment(cost.numpy())


def set_loss(logits: torch.Tensor, boxes: torch.Tensor, targets: list[tuple[torch.Tensor, torch.Tensor]],
             num_boxes: float) -> tuple[torch.Tensor, dict[str, float]]:
    """One layer's loss over the batch: logits (B, Q, T), boxes (B, Q, 4) cxcywh; targets per image
    (token map (n, T) of 0/1, boxes (n, 4) cxcywh)."""
    token_targets = torch.zeros_like(logits)
    l1 = logits.new_zeros(())
    giou = logits.new_zeros(())
    for b, (token_map, target_boxes) in enumerate(targets):
        q, t = match(logits[b].detach(), boxes[b].detach(), token_map, target_boxes)
        if len(q) == 0:
            continue
        q_idx, t_idx = torch.as_tensor(q), torch.as_tensor(t)
        token_targets[b, q_idx] = token_map[t_idx]
        pred, gt = boxes[b, q_idx], target_boxes[t_idx]
        l1 = l1 + F.l1_loss(pred, gt, reduction="sum")
        giou = giou + (1 - torch.diag(generalized_box_iou(_xyxy(pred), _xyxy(gt)))).sum()
    cls = focal(logits, token_targets).sum() / num_boxes
    l1, giou = l1 / num_boxes, giou / num_boxes
    total = cls + COST_L1 * l1 + COST_GIOU * giou
    return total, {"cls": float(cls), "l1": float(l1), "giou": float(giou)}


class EncoderTap:
    """Captures, during the package's transformer forward, the two-stage encoder outputs of every
    token (class logits, box deltas, anchor proposals), which it computes but does not return."""

    def __init__(self, model) -> None:
        from groundingdino.models.GroundingDINO import transformer

        self.logits: torch.Tensor | None = None
        self.deltas: torch.Tensor | None = None
        self.proposals: torch.Tensor | None = None
        model.transformer.enc_out_class_embed.register_forward_hook(self._logits)
        model.transformer.enc_out_bbox_embed.register_forward_hook(self._deltas)
        original = transformer.gen_encoder_output_proposals
        if not getattr(original, "instrument_tap", False):
            def tapped(*args, **kwargs):
                memory, proposals = original(*args, **kwargs)
                EncoderTap.current.proposals = proposals
                return memory, proposals

            tapped.instrument_tap = True  # type: ignore[attr-defined]
            transformer.gen_encoder_output_proposals = tapped
        EncoderTap.current = self

    current: EncoderTap

    def _logits(self, module, args, output) -> None:
        if self.logits is None:  # the first call is over all tokens (later ones: top-k queries)
            self.logits = output

    def _deltas(self, module, args, output) -> None:
        self.deltas = output

    def take(self, tokens: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits (B, N, T), boxes (B, N, 4) cxcywh, valid (B, N)) of the last forward; resets."""
        assert self.logits is not None and self.deltas is not None and self.proposals is not None
        valid = torch.isfinite(self.proposals).all(-1)
        unsig = self.deltas + self.proposals.masked_fill(~valid[..., None], 0.0)
        out = self.logits[..., :tokens], unsig.sigmoid(), valid
        self.logits = self.deltas = self.proposals = None
        return out


def dense_loss(logits: torch.Tensor, boxes: torch.Tensor, valid: torch.Tensor,
               targets: list[tuple[torch.Tensor, torch.Tensor]], k: int = DENSE_K) -> torch.Tensor:
    """One-to-many loss on every encoder token: each target's ``k`` cheapest tokens (same cost as
    the matching) learn its class tokens and box, all others learn 'nothing'. Far more supervision
    per image than the one-to-one loss, so the two-stage proposals become useful in few steps."""
    token_targets = torch.zeros_like(logits)
    l1 = logits.new_zeros(())
    giou = logits.new_zeros(())
    positives = 0
    for b, (token_map, target_boxes) in enumerate(targets):
        if target_boxes.shape[0] == 0:
            continue
        with torch.no_grad():
            prob = logits[b].detach().sigmoid()
            neg = (1 - ALPHA) * prob**GAMMA * -(1 - prob + 1e-8).log()
            pos = ALPHA * (1 - prob) ** GAMMA * -(prob + 1e-8).log()
            weights = token_map / token_map.sum(1, keepdim=True)
            cost = (COST_CLASS * (pos - neg) @ weights.T + COST_L1 * torch.cdist(boxes[b].detach(), target_boxes, p=1)
                    - COST_GIOU * generalized_box_iou(_xyxy(boxes[b].detach()), _xyxy(target_boxes)))
            cost[~valid[b]] = float("inf")
            picked = cost.topk(min(k, int(valid[b].sum())), dim=0, largest=False).indices  # (k, n)
            owner = torch.full((cost.shape[0],), -1, dtype=torch.long)
            best = torch.full((cost.shape[0],), float("inf"))
            for t in range(cost.shape[1]):
                for q in picked[:, t].tolist():
                    if cost[q, t] < best[q]:
                        best[q], owner[q] = cost[q, t], t
            q_idx = torch.nonzero(owner >= 0, as_tuple=True)[0]
            t_idx = owner[q_idx]
        token_targets[b, q_idx] = token_map[t_idx]
        pred, gt = boxes[b, q_idx], target_boxes[t_idx]
        l1 = l1 + F.l1_loss(pred, gt, reduction="sum")
        giou = giou + (1 - torch.diag(generalized_box_iou(_xyxy(pred), _xyxy(gt)))).sum()
        positives += len(q_idx)
    norm = max(1.0, float(positives))
    cls = (focal(logits, token_targets) * valid[..., None]).sum() / norm
    return cls + COST_L1 * l1 / norm + COST_GIOU * giou / norm


def layer_outputs(model, tensors: list[torch.Tensor], input_ids: torch.Tensor):
    """Per decoder layer and for the encoder's top-k proposals: (logits (B, Q, T), boxes (B, Q, 4)),
    last layer last."""
    from autolabel_gui.detection import gdino_forward
    from groundingdino.util.misc import inverse_sigmoid

    memory = gdino_forward.encode_images(model, tensors)
    text = gdino_forward.encode_text(model, input_ids)
    batch = len(tensors)
    text_dict = {k: v.expand(batch, *v.shape[1:]).contiguous() for k, v in text.items()}
    hs, reference, hs_enc, ref_enc, _ = model.transformer(
        memory.srcs, memory.masks, None, memory.poss, None, None, text_dict
    )
    tokens = input_ids.shape[1]
    outs = [(model.transformer.enc_out_class_embed(hs_enc[-1], text_dict)[..., :tokens], ref_enc[-1])]
    for ref, bbox_embed, cls_embed, h in zip(reference[:-1], model.bbox_embed, model.class_embed, hs):
        boxes = (bbox_embed(h) + inverse_sigmoid(ref)).sigmoid()
        outs.append((cls_embed(h, text_dict)[..., :tokens], boxes))
    return outs


def caption_for(model, classes: tuple[str, ...], rng: np.random.Generator):
    """A shuffled caption of all classes (80%) or of a random subset, built as the product builds it."""
    from autolabel_gui.detection.class_scoring import build_chunks

    order = list(rng.permutation(len(classes)))
    if rng.uniform() >= 0.8:
        order = order[: int(rng.integers(1, len(classes) + 1))]
    names = [classes[i] for i in order]
    chunk = build_chunks(names, model.tokenizer, model.specical_tokens, int(model.max_text_len))[0]
    return names, chunk


def batch_targets(scenes: list[Scene], names: list[str], chunk, size: int):
    tokens = len(chunk.input_ids)
    out = []
    for scene in scenes:
        keep = [i for i, label in enumerate(scene.labels) if label in names]
        token_map = torch.zeros(len(keep), tokens)
        boxes = torch.zeros(len(keep), 4)
        for row, i in enumerate(keep):
            token_map[row, list(chunk.spans[names.index(scene.labels[i])])] = 1.0
            x0, y0, x1, y1 = scene.boxes[i]
            boxes[row] = torch.tensor([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]) / size
        out.append((token_map, boxes))
    return out


def to_tensor(image: np.ndarray, side: int | None = None) -> torch.Tensor:
    """The product's preprocessing, at ``side`` px (default: the image's own)."""
    from autolabel_gui.detection.grounding_dino import preprocess

    side = side or image.shape[0]
    return preprocess(image, side, side)


def _lr(spec: InstrumentSpec, step: int) -> float:
    if step < spec.warmup:
        return spec.lr * (step + 1) / spec.warmup
    progress = (step - spec.warmup) / max(1, spec.steps - spec.warmup)
    return spec.lr * 0.5 * (1 + np.cos(np.pi * min(1.0, progress)))


def init_prior(model, prior: float) -> None:
    """Start the class logits as MM-Grounding-DINO's head does, ``q.t / sqrt(d) + log(prior/(1-prior))``.

    The package's ``ContrastiveEmbed`` is a bare dot product with no bias and no temperature, so at
    initialisation its logits spread with a standard deviation of ~13 and half of them say 'yes'.
    Both fixes are folded into parameters the product loads anyway: a logit is
    ``LN_q(h) . LN_t(t)``; the text-side LayerNorm's weight becomes ``1/sqrt(d)`` and its bias
    ``-v``, the query-side ones' bias ``+v`` (``v`` constant, ``|v|^2`` the offset). The cross
    terms vanish at initialisation (a LayerNorm's normalised output has zero mean over its
    dimensions), leaving ``n_q . n_t / sqrt(d) - |v|^2``. All stay learnable.
    """
    transformer = model.transformer
    dim = transformer.d_model
    value = float(np.sqrt(np.log((1 - prior) / prior) / dim))
    text_norm = transformer.encoder.text_layers[-1].norm2
    with torch.no_grad():
        transformer.decoder.norm.bias.fill_(value)
        transformer.enc_output_norm.bias.fill_(value)
        text_norm.bias.fill_(-value)
        text_norm.weight.fill_(1 / np.sqrt(dim))


def input_side(spec: InstrumentSpec, rng: np.random.Generator) -> int:
    """Full size for half the steps, else a random smaller side (so preview sizes are in-distribution)."""
    size = spec.scenes.size
    if spec.min_side >= size or rng.uniform() < 0.5:
        return size
    return int(rng.integers(spec.min_side // 16, size // 16)) * 16


def save_weights(model, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict()}, tmp)
    os.replace(tmp, path)


def train(inst: Instrument, max_seconds: float = float("inf"), eval_every: int = 0,
          progress: Callable | None = None, log: Callable[[str], None] = print) -> dict:
    """Train (resuming from ``train_state.pt`` if there), save ``instrument.pth``; returns the meta."""
    from autolabel_gui.detection import fast_sampling
    from benchmarks.instrument.evaluate import evaluate

    spec = inst.spec
    model = build_model(inst)
    fast_sampling.install_for_groundingdino()
    tap = EncoderTap(model)
    model.train()
    # The text encoder stays as built: its class words are distinct random vectors already, and
    # training it too made every class score swing between 0 and 1 from step to step (the
    # package's contrastive head has no temperature), so only ``feat_map`` adapts to it.
    for param in model.bert.parameters():
        param.requires_grad_(False)
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=spec.lr,
                                  weight_decay=1e-4)
    state_path = inst.folder / "train_state.pt"
    step, curve, cpu0, wall_used = 0, [], 0.0, 0.0
    if state_path.exists():
        state = torch.load(state_path, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        step, curve, cpu0, wall_used = state["step"], state["curve"], state["cpu"], state["wall"]
        log(f"resumed at step {step}")
    else:
        init_prior(model, spec.prior)
    started, cpu_started = time.perf_counter(), time.process_time()
    bar = progress(total=spec.steps, initial=step) if progress else None

    def checkpoint() -> None:
        tmp = state_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(), "step": step, "curve": curve,
                    "cpu": cpu0 + time.process_time() - cpu_started,
                    "wall": wall_used + time.perf_counter() - started}, tmp)
        os.replace(tmp, state_path)

    def held_out_eval() -> None:
        save_weights(model, inst.weights_path)
        result = evaluate(inst, count=32, precision="fast")
        wall = wall_used + time.perf_counter() - started
        curve.append({"step": step, "wall_s": round(wall), "AP": result["AP"], "AP50": result["AP50"]})
        log(f"step {step} wall {wall:.0f} s: held-out AP {result['AP']:.3f} AP50 {result['AP50']:.3f}")
        model.train()

    size = spec.scenes.size
    while step < spec.steps and time.perf_counter() - started < max_seconds:
        rng = np.random.default_rng([spec.seed, step])
        scenes = [make_scene(spec.scenes, step * spec.batch + i) for i in range(spec.batch)]
        names, chunk = caption_for(model, spec.scenes.classes, rng)
        side = input_side(spec, rng)
        targets = batch_targets(scenes, names, chunk, size)
        num_boxes = max(1.0, float(sum(len(t[1]) for t in targets)))
        for group in optimiser.param_groups:
            group["lr"] = _lr(spec, step)
        with fast_sampling.enabled(True):  # same sums as the reference sampling, faster (also backward)
            outs = layer_outputs(model, [to_tensor(s.image, side) for s in scenes], torch.tensor([chunk.input_ids]))
        losses = [set_loss(logits, boxes, targets, num_boxes) for logits, boxes in outs]
        total = sum(loss for loss, _ in losses) + dense_loss(*tap.take(len(chunk.input_ids)), targets)
        optimiser.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 0.1)
        optimiser.step()
        step += 1
        if bar is not None:
            last = losses[-1][1]
            bar.set_postfix(loss=f"{float(total):.2f}", cls=f"{last['cls']:.3f}", giou=f"{last['giou']:.3f}")
            bar.update(1)
        if step % 200 == 0:
            checkpoint()
        if eval_every and step % eval_every == 0:
            held_out_eval()
    if bar is not None:
        bar.close()
    checkpoint()
    if not curve or curve[-1]["step"] != step:
        held_out_eval()
    save_weights(model, inst.weights_path)
    meta = {"spec": asdict(spec), "steps_done": step, "curve": curve,
            "wall_s": round(wall_used + time.perf_counter() - started),
            "cpu_s": round(cpu0 + time.process_time() - cpu_started), "threads": torch.get_num_threads()}
    (inst.folder / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return meta


def build_instrument(cache_dir: Path | str = DEFAULT_CACHE, spec: InstrumentSpec | None = None,
                     progress: Callable | None = None, max_seconds: float = float("inf"),
                     eval_every: int = 0, log: Callable[[str], None] = print) -> Instrument:
    """The trained instrument for ``spec``, trained once (minutes) and cached under ``cache_dir/<hash>``."""
    spec = spec or InstrumentSpec()
    folder = Path(cache_dir).expanduser() / spec.key()
    inst = Instrument(folder, spec)
    if (folder / "meta.json").is_file() and inst.weights_path.is_file():
        return inst
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.json").write_text(json.dumps(asdict(spec), indent=1), encoding="utf-8")
    if not inst.config_path.is_file():
        write_files(folder, spec)
    log(f"training the instrument in {folder} (once) ...")
    train(inst, max_seconds=max_seconds, eval_every=eval_every, progress=progress, log=log)
    return inst


def main() -> None:
    from tqdm import tqdm

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=str(DEFAULT_CACHE))
    parser.add_argument("--steps", type=int, help="training steps (default: the spec's)")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--max-minutes", type=float, default=30.0, help="stop and save after this wall time")
    parser.add_argument("--eval-every", type=int, default=100, help="held-out AP every N steps")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = InstrumentSpec()
    if args.steps:
        spec = spec.with_(steps=args.steps)
    if args.batch:
        spec = spec.with_(batch=args.batch)
    inst = build_instrument(args.cache, spec, progress=lambda **kw: tqdm(mininterval=5, **kw),
                            max_seconds=args.max_minutes * 60, eval_every=args.eval_every,
                            log=lambda m: print(m, flush=True))
    print(json.loads((inst.folder / "meta.json").read_text())["curve"])


if __name__ == "__main__":
    main()
