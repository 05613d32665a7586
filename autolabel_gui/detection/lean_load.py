"""Building a model whose weights are about to be overwritten, without paying for them twice.

Loading a checkpoint the plain way initialises every parameter at random (Swin's truncated
normals, the transformer's Xavier: seconds for the full model), reads the file into memory, then
copies each tensor into the parameter it replaces: two copies of 700 MB and the time of both.
Here the parameters are created on the ``meta`` device while the model is built (shapes only,
no memory, no random numbers; buffers stay real, since modules compute them in ``__init__`` and
checkpoints may not hold them), the file is read once, and ``load_state_dict(assign=True)``
makes the checkpoint's tensors the parameters: no second copy is made. The file is not
memory-mapped: the parameters would then be the file's pages, and a weights file truncated or
overwritten in place while the window runs (``cp new.pth old.pth``, a share dropping it) would
kill the program with SIGBUS on the next forward.

What the checkpoint does not hold would be left without values, so ``leftovers`` names every
tensor still on ``meta`` and the caller builds the plain way instead: never a model with holes.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Mapping

import torch
from torch import nn


@contextlib.contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Inside, every parameter a module registers is kept on ``meta`` (its initialisation costs nothing).

    Patches ``nn.Module.register_parameter`` for the duration: only a model build may run inside.
    """
    original = nn.Module.register_parameter

    def register(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and not param.is_meta:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original(self, name, param)

    nn.Module.register_parameter = register
    try:
        yield
    finally:
        nn.Module.register_parameter = original


def not_tensors(state: Mapping[str, object]) -> list[str]:
    """Keys of ``state`` whose values are no tensors holding values (anything else, or a tensor
    saved on ``meta``, which ``map_location`` leaves there): such a file is not a checkpoint."""
    return [key for key, value in state.items() if not isinstance(value, torch.Tensor) or value.is_meta]


def assign(model: nn.Module, state: Mapping[str, torch.Tensor]) -> nn.modules.module._IncompatibleKeys:
    """``load_state_dict(strict=False, assign=True)`` with each tensor in the dtype of what it
    replaces (a checkpoint saved in fp16 still gives an fp32 model, as a copy would)."""
    current = model.state_dict(keep_vars=True)
    fitted = {key: value.to(current[key].dtype) if key in current and value.dtype != current[key].dtype else value
              for key, value in state.items()}
    return model.load_state_dict(fitted, strict=False, assign=True)


def leftovers(model: nn.Module) -> list[str]:
    """Parameters and buffers that got no value (still on ``meta``)."""
    return [name for name, tensor in itertools.chain(model.named_parameters(remove_duplicate=False),
                                                     model.named_buffers(remove_duplicate=False))
            if tensor.is_meta]
