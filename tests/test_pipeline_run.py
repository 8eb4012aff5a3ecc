"""Online / offline pipelines, the output layout and the ``vsis run`` command."""

from __future__ import annotations

import json
import threading
import time

import cv2
import numpy as np
import pytest
import torch

from vis_node.cli import main
from vis_node.structures.frames import Frame
from vis_node.io.labels import read_label_png, read_semantic_png
from vis_node.io.ytvis_json import decode_rle
from vis_node.perception.checkpoint import save_model
from vis_node.perception.config import ModelConfig
from vis_node.perception.model import build_model
from vis_node.perception.predictor import TorchPredictor
from vis_node.pipeline.backends import Backend
from vis_node.pipeline.offline import OfflinePipeline
from vis_node.pipeline.online import OnlinePipeline
from vis_node.pipeline.stages import foreground_probs, label_maps
from vis_node.pipeline.outputs import OutputWriter
from vis_node.synth import SynthConfig, generate_video
from vis_node.structures.instances import Instances

SIZE = 64


@pytest.fixture(scope="module")
def tiny_model():
    """Random tiny network; mask_threshold 0 makes every mask fill its box (a random
    network's mask probabilities rarely reach 0.5), so tracks always exist."""
    torch.manual_seed(0)
    config = ModelConfig(
        input_size=SIZE, fpn_channels=16, head_channels=16, seg_in_channels=16,
        seg_channels=16, seg_dilated_channels=8, seg_crop_size=8, class_hidden_dim=16,
        embedding_dim=8, pretrained_backbone=False, score_threshold=0.0, num_proposals=5,
        mask_threshold=0.0,
    )
    return build_model(config).eval()


@pytest.fixture(scope="module")
def clip() -> list[Frame]:
    video = generate_video(3, SynthConfig(width=96, height=72, frames=6))
    return [
        Frame(image, index * 33_000_000, index, f"{index:05d}", "clip")
        for index, image in enumerate(video.frames)
    ]


def _check_layout(out, frames: list[Frame], class_count: int) -> list[dict]:
    """The files agree: PNG counts, ids vs results.json RLEs, semantics vs labels."""
    instance_pngs = sorted((out / "instances" / "clip").glob("*.png"))
    semantic_pngs = sorted((out / "semantics" / "clip").glob("*.png"))
    assert [p.stem for p in instance_pngs] == [f.name for f in frames]
    assert [p.stem for p in semantic_pngs] == [f.name for f in frames]
    results = json.loads((out / "results.json").read_text())
    ids = np.stack([read_label_png(p)[0] for p in instance_pngs])
    semantics = np.stack([read_semantic_png(p) for p in semantic_pngs])
    present = {int(v) for v in np.unique(ids) if v}
    assert present, "the random model should produce at least one track"
    assert len(results) == len(present)
    for entry in results:
        assert entry["video_id"] == 1 and 1 <= entry["category_id"] < class_count
        assert len(entry["segmentations"]) == len(frames)
        decoded = [None if r is None else decode_rle(r) for r in entry["segmentations"]]
        track = [int(v) for v in np.unique(ids[[d is not None for d in decoded]][
            np.stack([d for d in decoded if d is not None])])]
        assert len(track) == 1
        for t, mask in enumerate(decoded):
            expected = ids[t] == track[0]
            if mask is None:
                assert not expected.any()
            else:
                np.testing.assert_array_equal(mask, expected)
        last = max(t for t, mask in enumerate(decoded) if mask is not None)
        assert set(np.unique(semantics[last][ids[last] == track[0]])) == {entry["category_id"]}
    for t in range(len(frames)):
        for track_id in np.unique(ids[t]):
            classes = np.unique(semantics[t][ids[t] == track_id])
            assert len(classes) == 1 and (classes[0] == 0) == (track_id == 0)
    return results


def test_foreground_probs_drops_background():
    probs = foreground_probs(np.array([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0]], np.float32))
    np.testing.assert_allclose(probs, [[0.0, 0.5, 0.5], [0.0, 0.5, 0.5]])


def test_frames_without_instances_give_empty_maps():
    assert foreground_probs(np.zeros((0, 3), np.float32)).shape == (0, 3)

    class Nothing:
        class_names = ("background", "a", "b")

        def __call__(self, image: np.ndarray) -> Instances:
            return Instances.empty(image.shape[0], image.shape[1], 3)

    pipeline = OnlinePipeline.build(Nothing())
    for k in range(2):
        frame = Frame(np.zeros((6, 8, 3), np.uint8), k * 1_000_000, k, f"{k:05d}", "seq")
        result = pipeline.step(frame)
        assert len(result.instances) == 0 and not result.id_map.any()
        assert result.semantic_map.shape == (6, 8)


def test_motion_gated_pipeline_computes_each_flow_once():
    class OneSquare:
        class_names = ("background", "a")

        def __call__(self, image: np.ndarray) -> Instances:
            masks = np.zeros((1, *image.shape[:2]), bool)
            masks[0, 4:20, 4:20] = True
            return Instances(masks, np.array([[4, 4, 20, 20]], np.float32),
                             np.array([[0.1, 0.9]], np.float32), np.ones(1, np.float32))

    calls = []

    def flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        calls.append(int(source[0, 0, 0]))
        return np.zeros((*source.shape[:2], 2), np.float32)

    pipeline = OnlinePipeline.build(OneSquare(), flow=flow)  # the gate is on by default
    for k in range(3):
        image = np.full((32, 32, 3), k, np.uint8)
        pipeline.step(Frame(image, k * 1_000_000, k, f"{k:05d}", "seq"))
    assert calls == [1, 2]  # frames 1 and 2, each computed once for gate and tracker


def test_track_stage_prefetch_computes_the_flow_ahead_and_changes_nothing():
    from vis_node.pipeline.stages import TrackStage
    from vis_node.tracking.flow import DISFlow, LastPairFlow
    from vis_node.tracking.tracker import OnlineTracker

    video = generate_video(3, SynthConfig(width=96, height=72, frames=6))
    calls: list[int] = []
    dis = DISFlow()

    def flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        calls.append(len(calls))
        return dis(source, target)

    plain = TrackStage(OnlineTracker(flow=DISFlow()))
    ahead = TrackStage(OnlineTracker(flow=LastPairFlow(flow)))
    for frame, ids in zip(video.frames, video.ids):
        instances = Instances.from_masks(np.stack([ids == k for k in np.unique(ids[ids > 0])]))
        ahead.prefetch(frame)
        done = len(calls)
        expected, tracked = plain(instances, frame), ahead(instances, frame)
        assert len(calls) == done  # the tracker found the prefetched flow
        np.testing.assert_array_equal(tracked.track_ids, expected.track_ids)
        np.testing.assert_array_equal(tracked.masks, expected.masks)
    assert len(calls) == len(video.frames) - 1  # one flow per frame pair


def test_gate_prefetch_computes_the_moving_region_once_and_changes_nothing(monkeypatch):
    import vis_node.tracking.motion_gate as motion_gate
    from vis_node.tracking.flow import DISFlow, LastPairFlow

    video = generate_video(5, SynthConfig(width=96, height=72, frames=6))
    regions: list[int] = []
    saliency = motion_gate.motion_saliency

    def counted(flow: np.ndarray, **kwargs: float) -> np.ndarray:
        regions.append(len(regions))
        return saliency(flow, **kwargs)

    plain = motion_gate.MotionSaliencyGate(DISFlow())
    ahead = motion_gate.MotionSaliencyGate(LastPairFlow(DISFlow()))
    for frame, ids in zip(video.frames, video.ids):
        instances = Instances.from_masks(np.stack([ids == k for k in np.unique(ids[ids > 0])]))
        expected, expected_confidence = plain(instances, frame)
        monkeypatch.setattr(motion_gate, "motion_saliency", counted)
        ahead.prefetch(frame)
        done = len(regions)
        kept, confidence = ahead(instances, frame)
        monkeypatch.setattr(motion_gate, "motion_saliency", saliency)
        assert len(regions) == done  # the gate found the prefetched region
        np.testing.assert_array_equal(kept.masks, expected.masks)
        assert confidence == expected_confidence
    assert len(regions) == len(video.frames) - 1  # one region per frame pair


def test_label_maps_paint_labels_of_tracks():
    masks = np.zeros((2, 4, 5), bool)
    masks[0, :2] = True
    masks[1, 1:] = True
    instances = Instances(masks, np.zeros((2, 4)), np.ones((2, 3)) / 3, np.ones(2),
                          track_ids=np.array([7, 3]), scores=np.array([0.9, 0.5]))
    ids, classes = label_maps(instances, np.array([2, 1]))
    assert ids.dtype == np.uint16 and classes.dtype == np.uint8
    np.testing.assert_array_equal(ids[:, 0], [7, 7, 3, 3])
    np.testing.assert_array_equal(classes[:, 0], [2, 2, 1, 1])


def test_label_maps_wrap_large_track_ids_without_hitting_background():
    masks = np.zeros((2, 2, 2), bool)
    masks[0, 0] = True
    masks[1, 1] = True
    instances = Instances(masks, np.zeros((2, 4)), np.ones((2, 3)) / 3, np.ones(2),
                          track_ids=np.array([65536, 65535 + 7]), scores=np.array([0.9, 0.5]))
    ids, classes = label_maps(instances, np.array([1, 2]))
    np.testing.assert_array_equal(ids, [[1, 1], [7, 7]])
    np.testing.assert_array_equal(classes, [[1, 1], [2, 2]])


def test_online_pipeline_writes_consistent_files(tiny_model, clip, tmp_path):
    pipeline = OnlinePipeline.build(TorchPredictor(tiny_model))
    with OutputWriter(tmp_path, tiny_model.config.class_names, metadata={"mode": "online"}) as out:
        for frame in clip:
            result = pipeline.step(frame)
            assert result.id_map.shape == (72, 96)
            assert set(result.timings) == {"detect", "track", "unify"}
            out.write(result)
    _check_layout(tmp_path, clip, tiny_model.config.num_classes)
    timings = json.loads((tmp_path / "timings.json").read_text())
    assert timings["frames"] == len(clip) and timings["mode"] == "online"
    assert set(timings["stages"]["detect"]) == {"mean_ms", "median_ms", "p90_ms"}
    capture = cv2.VideoCapture(str(tmp_path / "overlay" / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == len(clip)


def test_offline_pipeline_keeps_one_label_per_track(tiny_model, clip, tmp_path):
    results = OfflinePipeline(TorchPredictor(tiny_model)).run(clip)
    assert [r.frame.name for r in results] == [f.name for f in clip]
    labels: dict[int, set[int]] = {}
    for result in results:
        for track_id, label in zip(result.instances.track_ids, result.labels):
            labels.setdefault(int(track_id), set()).add(int(label))
        painted = np.unique(result.id_map[result.id_map > 0])
        assert set(painted.tolist()) <= set(result.instances.track_ids.tolist())
    assert labels and all(len(v) == 1 and min(v) >= 1 for v in labels.values())
    with OutputWriter(tmp_path, tiny_model.config.class_names, overlay=False) as out:
        for result in results:
            out.write(result)
    _check_layout(tmp_path, clip, tiny_model.config.num_classes)


@pytest.fixture()
def image_folder(clip, tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for frame in clip[:5]:
        cv2.imwrite(str(folder / f"{frame.name}.jpg"), cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
    return folder


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_vsis_run_end_to_end(tiny_model, image_folder, tmp_path, runtime):
    checkpoint = save_model(tiny_model, tmp_path / "tiny" / "model.pt")
    out = tmp_path / "out"
    code = main(["run", str(image_folder), "--out", str(out), "--model", str(checkpoint),
                 "--runtime", runtime])
    assert code == 0
    assert len(list((out / "instances" / "clip").glob("*.png"))) == 5
    assert len(list((out / "semantics" / "clip").glob("*.png"))) == 5
    assert (out / "overlay" / "clip.mp4").stat().st_size > 0
    assert json.loads((out / "timings.json").read_text())["runtime"] == runtime
    assert isinstance(json.loads((out / "results.json").read_text()), list)
    label_map = json.loads((out / "label_map.json").read_text())
    assert label_map == {str(i): name for i, name in enumerate(tiny_model.config.class_names)}


def test_vsis_run_offline_mode(tiny_model, image_folder, tmp_path):
    checkpoint = save_model(tiny_model, tmp_path / "tiny" / "model.pt")
    code = main(["run", str(image_folder), "--out", str(tmp_path / "out"), "--model",
                 str(checkpoint), "--mode", "offline", "--no-overlay"])
    assert code == 0
    assert len(list((tmp_path / "out" / "instances" / "clip").glob("*.png"))) == 5
    assert not (tmp_path / "out" / "overlay").exists()


@pytest.mark.parametrize(
    ("flags", "gated"),
    [([], True), (["--no-motion-gate"], False), (["--mode", "offline"], True),
     (["--mode", "offline", "--no-motion-gate"], False)],
    ids=["default", "off", "offline", "offline-off"],
)
def test_vsis_run_motion_gate(tiny_model, image_folder, tmp_path, flags, gated):
    """On by default in both modes; ``--no-motion-gate`` runs without."""
    checkpoint = save_model(tiny_model, tmp_path / "tiny" / "model.pt")
    out = tmp_path / "out"
    code = main(["run", str(image_folder), "--out", str(out), "--model", str(checkpoint),
                 "--no-overlay", *flags])
    assert code == 0
    timings = json.loads((out / "timings.json").read_text())
    assert timings["motion_gate"] is gated
    assert len(list((out / "instances" / "clip").glob("*.png"))) == 5


@pytest.mark.parametrize(
    ("flags", "overrides"),
    [([], None), (["--no-refiner-flip"], (False, None, None)),
     (["--refiner-flip"], (True, None, None)),
     (["--refiner-flip-max-instances", "1"], (None, 1, None)),
     (["--saliency-threshold", "0.2"], (None, None, 0.2))],
)
def test_vsis_run_salient_settings_reach_the_backend(
    tiny_model, image_folder, tmp_path, monkeypatch, flags, overrides
):
    """The flags reach the model loader; a model that is not salient runs as before."""
    from vis_node.perception.salient_config import SalientOverrides

    import vis_node.pipeline.backends as backends

    calls: list[dict] = []
    load = backends.load_backend

    def recording(spec, **kwargs):
        calls.append(kwargs)
        return load(spec, **kwargs)

    monkeypatch.setattr(backends, "load_backend", recording)
    checkpoint = save_model(tiny_model, tmp_path / "tiny" / "model.pt")
    code = main(["run", str(image_folder), "--out", str(tmp_path / "out"), "--model",
                 str(checkpoint), "--no-overlay", *flags])
    assert code == 0
    assert [c["overrides"] for c in calls] == [
        None if overrides is None else SalientOverrides(*overrides)
    ]
    assert len(list((tmp_path / "out" / "instances" / "clip").glob("*.png"))) == 5


def test_vsis_run_offline_propose_reduce(tiny_model, clip, image_folder, tmp_path):
    checkpoint = save_model(tiny_model, tmp_path / "tiny" / "model.pt")
    out = tmp_path / "out"
    code = main(["run", str(image_folder), "--out", str(out), "--model", str(checkpoint),
                 "--mode", "offline", "--offline-method", "propose-reduce",
                 "--min-sequence-score", "0", "--no-overlay"])
    assert code == 0
    _check_layout(out, clip[:5], tiny_model.config.num_classes)
    timings = json.loads((out / "timings.json").read_text())
    assert timings["offline_method"] == "propose-reduce"
    assert set(timings["stages"]) == {"predict", "propose_reduce"}


def test_vsis_run_missing_model_exits_2(image_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VSIS_MODELS_DIR", str(tmp_path / "no-models"))
    code = main(["run", str(image_folder), "--out", str(tmp_path / "out"), "--model", "nope"])
    assert code == 2
    assert "no such model" in capsys.readouterr().err


def test_vsis_run_unreadable_input_exits_2(tiny_model, tmp_path, capsys):
    checkpoint = save_model(tiny_model, tmp_path / "tiny" / "model.pt")
    code = main(["run", str(tmp_path / "missing"), "--out", str(tmp_path / "out"),
                 "--model", str(checkpoint)])
    assert code == 2
    assert "input not found" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "00000.jpg").write_bytes(b"not a jpeg")
    code = main(["run", str(broken), "--out", str(tmp_path / "out2"), "--model", str(checkpoint)])
    assert code == 2
    assert "00000.jpg" in capsys.readouterr().err


def test_the_flow_is_computed_while_the_model_runs():
    """The frame pair's flow runs on another thread during ``predict`` and is not
    computed again after it by the gate or the tracker."""
    order: list[str] = []

    class SlowSquare:
        class_names = ("background", "a")

        def __call__(self, image: np.ndarray) -> Instances:
            order.append("predict start")
            time.sleep(0.2)
            order.append("predict end")
            masks = np.zeros((1, *image.shape[:2]), bool)
            masks[0, 4:20, 4:20] = True
            return Instances(masks, np.array([[4, 4, 20, 20]], np.float32),
                             np.array([[0.1, 0.9]], np.float32), np.ones(1, np.float32))

    def flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        order.append(f"flow {threading.current_thread().name.split('_')[0]}")
        out = np.zeros((*source.shape[:2], 2), np.float32)
        out[4:20, 4:20, 0] = 3.0
        return out

    pipeline = OnlinePipeline.build(SlowSquare(), flow=flow)
    assert pipeline.gate is not None
    results = []
    for k in range(2):
        image = np.full((32, 32, 3), k, np.uint8)
        results.append(pipeline.step(Frame(image, k * 1_000_000, k, f"{k:05d}", "seq")))
    second = order[order.index("predict end") + 1:]  # the first frame has no flow
    assert sorted(second) == ["flow vsis-flow", "predict end", "predict start"]
    assert second.index("flow vsis-flow") < second.index("predict end")
    assert len(results[1].instances) == 1



class _RiderInTheAir:
    """One square, named ``person`` on the first 4 frames, then ``object`` (the model
    cannot name it upside down)."""

    class_names = ("background", "object", "person")

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, image: np.ndarray) -> Instances:
        probs = [0.0, 0.2, 0.8] if self.calls < 4 else [0.0, 0.9, 0.1]
        self.calls += 1
        masks = np.zeros((1, *image.shape[:2]), bool)
        masks[0, 4:20, 4:20] = True
        return Instances(masks, np.array([[4, 4, 20, 20]], np.float32),
                         np.array([probs], np.float32), np.ones(1, np.float32))


def test_online_and_offline_runs_keep_a_named_class_over_object() -> None:
    from vis_node.tracking.fusion import FusionConfig

    clip = [Frame(np.zeros((32, 32, 3), np.uint8), k * 1_000_000, k, f"{k:05d}", "seq")
            for k in range(16)]
    online = OnlinePipeline.build(_RiderInTheAir(), fusion_config=FusionConfig(motion_gate=False))
    assert online.unify.unifier.fallback_class == 1  # from the backend's label map
    assert [int(online.step(frame).labels[0]) for frame in clip] == [2] * 16
    offline = OfflinePipeline(_RiderInTheAir(), fallback_class=1).run(clip)
    assert {int(r.labels[0]) for r in offline} == {2}
    agnostic = OfflinePipeline(_RiderInTheAir()).run(clip)  # without: "object" outweighs
    assert {int(r.labels[0]) for r in agnostic} == {1}
    gt = OnlinePipeline.build(Backend("gt", ("background", "object"), lambda image, stamp: None))
    assert gt.unify.unifier.fallback_class is None  # "object" is a class-agnostic map's one label


class _StillAndMoving:
    """Two squares on every frame: one the flow stub moves, one that stays still."""

    class_names = ("background", "a")

    def __call__(self, image: np.ndarray) -> Instances:
        masks = np.zeros((2, *image.shape[:2]), bool)
        masks[0, 40:55, 5:20] = True  # still
        masks[1, 10:30, 40:60] = True  # moving
        return Instances(masks, np.array([[5, 40, 20, 55], [40, 10, 60, 30]], np.float32),
                         np.array([[0.1, 0.9]] * 2, np.float32), np.ones(2, np.float32))


@pytest.mark.parametrize("method", ["siso", "propose-reduce"])
def test_offline_pipeline_gates_the_detections_like_online(method: str) -> None:
    from vis_node.tracking.fusion import FusionConfig
    from vis_node.tracking.offline_config import OfflineConfig

    moving = _StillAndMoving()(np.zeros((60, 80, 3), np.uint8)).masks[1]

    def flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        field = np.zeros((*source.shape[:2], 2), np.float32)
        field[moving, 0] = 6.0
        return field

    clip = [Frame(np.zeros((60, 80, 3), np.uint8), k * 1_000_000, k, f"{k:05d}", "seq")
            for k in range(5)]
    config = OfflineConfig(offline_method=method)
    still_pixels = {}
    for gate in (True, False):
        results = OfflinePipeline(
            _StillAndMoving(), flow=flow, config=config, fusion=FusionConfig(motion_gate=gate)
        ).run(clip)
        assert all(r.id_map[moving].all() for r in results)  # the mover is always there
        still_pixels[gate] = [int((r.id_map[40:55, 5:20] > 0).sum()) for r in results]
    assert still_pixels[False] == [225] * 5
    # Gated: only where there is no motion evidence yet (the first frame) can it pass.
    assert still_pixels[True][1:] == [0] * 4


@pytest.mark.parametrize("method", ["siso", "propose-reduce"])
def test_offline_pipeline_computes_each_frame_pairs_flow_once(method: str) -> None:
    """Gate, salient regions, propagation, tracker and Propose-Reduce share one flow
    table per sequence: each ordered pair of neighbouring frames is computed once."""
    from vis_node.tracking.offline_config import OfflineConfig

    clip = [Frame(np.full((60, 80, 3), k, np.uint8), k * 1_000_000, k, f"{k:05d}", "seq")
            for k in range(5)]
    pairs: list[tuple[int, int]] = []

    def flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        pairs.append((int(source[0, 0, 0]), int(target[0, 0, 0])))
        return np.zeros((*source.shape[:2], 2), np.float32)

    results = OfflinePipeline(
        _StillAndMoving(), flow=flow, config=OfflineConfig(offline_method=method)
    ).run(clip)
    assert len(results) == 5
    assert len(pairs) == len(set(pairs)), sorted(pairs)
    assert set(pairs) <= {(k, k + step) for k in range(5) for step in (-1, 1)}
    assert (1, 0) in pairs  # the gate's and the tracker's direction is among them
