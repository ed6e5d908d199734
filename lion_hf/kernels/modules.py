"""Whether a module's call runs nothing but its class's own ``forward``: the fused paths read such modules'
weights directly (or replace their call) only then."""

from __future__ import annotations

from torch import nn
from torch.nn.modules import module as module_state  # the global hooks (read per call: they change at run time)


def plain_module(module: nn.Module, cls: type[nn.Module]) -> bool:
    """``module`` is exactly a ``cls`` (no subclass: adapters, quantised layers) with no forward hooks of its own
    and none registered globally (e.g. a sharding wrapper's gathers)."""
    return (type(module) is cls and not module._forward_hooks and not module._forward_pre_hooks
            and not module_state._global_forward_hooks and not module_state._global_forward_pre_hooks)


__all__ = ["plain_module"]
