"""Every hida_rt plugin by name: the `PluginSpec`s of the per-op modules (ida, meta_acon, acon_const, deform_conv).

Importable without TensorRT or Triton; each op module documents its plugin
(inputs, output, dtypes, attributes, int32 extras, kernel, launch grid).
"""
from __future__ import annotations

from . import acon_const, deform_conv, ida, meta_acon
from .contract import DOMAIN, DOMAIN_VERSION, NAMESPACE, PluginSpec, static

__all__ = ["DOMAIN", "DOMAIN_VERSION", "NAMESPACE", "OP_MODULES", "PLUGINS", "PluginSpec", "plugin_spec", "static"]

# One module per op, holding its spec(s), its torch reference and its tensorrt.plugin registration.
OP_MODULES = (ida, meta_acon, acon_const, deform_conv)
PLUGINS: dict[str, PluginSpec] = {spec.name: spec for module in OP_MODULES for spec in module.SPECS}


def plugin_spec(name: str) -> PluginSpec:
    try:
        return PLUGINS[name]
    except KeyError:
        raise KeyError(f"no hida_rt plugin {name!r}; known: {', '.join(PLUGINS)}") from None
