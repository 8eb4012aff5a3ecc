"""Evaluation metrics (DAVIS J/F, SESIV JS/FS, YouTube-VIS AP/AR, HOTA/IDF1/IDSW).

:func:`evaluate` is the one entry point used by ``vsis eval``, training validation
and benchmarks. Definitions follow ``docs/METRICS.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from vis_node.evaluation.loading import MISSING_RULES, FolderPairs, SequencePair

PROTOCOLS: tuple[str, ...] = (
    "davis2016",
    "davis2017-unsupervised",
    "sesiv",
    "ytvis",
    "hota",
)
"""Protocol names accepted by :func:`evaluate`."""


def _iterate(pairs: FolderPairs, protocol: str) -> Iterator[SequencePair]:
    """Load the sequences one at a time, with a progress bar."""
    for name in tqdm(pairs.sequences, desc=f"eval {protocol}", unit="seq", leave=False):
        yield pairs.load(name)


def evaluate(
    protocol: str,
    pred: str | Path,
    gt: str | Path,
    *,
    pred_semantics: str | Path | None = None,
    gt_semantics: str | Path | None = None,
    missing: str = MISSING_RULES[0],
) -> dict:
    """Score predictions against ground truth under one protocol.

    Parameters
    ----------
    protocol:
        One of :data:`PROTOCOLS`.
    pred, gt:
        ``<root>/<seq>/<frame>.png`` instance-id folders. For ``ytvis`` they may
        instead be a YouTube-VIS results JSON and annotation JSON.
    pred_semantics, gt_semantics:
        ``<root>/<seq>/<frame>.png`` class-id folders; required by ``sesiv``,
        optional for ``ytvis`` (categories), ignored otherwise.
    missing:
        One of :data:`~vis_node.evaluation.loading.MISSING_RULES`: a ground-truth frame
        without prediction scores as an empty prediction (``empty``) or as the latest
        earlier one (``hold``: what a subscriber had, e.g. from ``vsis replay --pace
        recorded``, where the graph skips frames). Folders only.

    Returns
    -------
    dict
        Always ``protocol`` and ``num_sequences``; then ``J``, ``F`` (each
        ``{mean, recall, decay}``), ``JF``, ``per_sequence`` for the DAVIS protocols;
        ``JS``, ``FS``, ``OS`` for ``sesiv``; ``AP``, ``AP50``, ``AP75``, ``AR1``,
        ``AR10`` for ``ytvis``; ``HOTA``, ``IDF1`` (fractions) and ``IDSW`` (int)
        for ``hota``.

    Raises
    ------
    ValueError
        For an unknown protocol or missing rule, missing semantics for ``sesiv``, or more than 20
        proposals in a sequence under ``davis2017-unsupervised``.
    vis_node.structures.errors.InputDataError
        For unreadable inputs or frame-size mismatches (the message names the file).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    if protocol == "sesiv" and (pred_semantics is None or gt_semantics is None):
        raise ValueError(
            "the sesiv protocol needs class-id maps: pass pred_semantics and gt_semantics "
            "(--pred-semantics / --gt-semantics)"
        )
    if protocol == "ytvis" and Path(pred).is_file() and Path(gt).is_file():
        from vis_node.evaluation.ytvis import evaluate_ytvis_json

        return evaluate_ytvis_json(pred, gt)

    pairs = FolderPairs(
        pred, gt, pred_semantics=pred_semantics, gt_semantics=gt_semantics, missing=missing
    )
    sequences = _iterate(pairs, protocol)
    if protocol == "davis2016":
        from vis_node.evaluation.davis import evaluate_davis2016

        return evaluate_davis2016(sequences)
    if protocol == "davis2017-unsupervised":
        from vis_node.evaluation.davis import evaluate_davis2017_unsupervised

        return evaluate_davis2017_unsupervised(sequences)
    if protocol == "sesiv":
        from vis_node.evaluation.sesiv import evaluate_sesiv

        return evaluate_sesiv(sequences)
    if protocol == "ytvis":
        from vis_node.evaluation.ytvis import evaluate_ytvis_pairs

        return evaluate_ytvis_pairs(sequences, pred)
    from vis_node.evaluation.tracking import evaluate_tracking

    return evaluate_tracking(sequences)


__all__ = ["MISSING_RULES", "PROTOCOLS", "evaluate"]
