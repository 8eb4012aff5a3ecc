"""vsis bag make: images and ground truth into rosbag2, read back with the bag readers."""

from __future__ import annotations

import numpy as np
import pytest

from vis_node.cli import main
from vis_node.io.readers import DavisRoot
from vis_node.io.rosbag import image_topics, read_bag_frames, read_bag_labels
from vis_node.replay.bag_make import (
    GT_IDS_TOPIC,
    GT_SEMANTICS_TOPIC,
    IMAGE_TOPIC,
    BagSpec,
    make_bags,
)
from vis_node.synth.generator import SynthConfig
from vis_node.synth.writer import write_synth_root


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    config = SynthConfig(width=64, height=48, frames=5)
    return write_synth_root(root / "data", videos=2, seed=4, config=config)


@pytest.mark.parametrize("fmt", ["mcap", "sqlite3"])
def test_davis_root_to_one_bag_per_sequence_with_ground_truth(synth_root, tmp_path, fmt):
    written = make_bags(synth_root, tmp_path / "bags", spec=BagSpec(fmt=fmt, fps=10.0))
    root = DavisRoot(synth_root)
    assert sorted(written) == root.sequences
    seq = root.sequences[1]
    bag = written[seq]
    assert bag == tmp_path / "bags" / seq
    assert image_topics(bag) == {
        IMAGE_TOPIC: "sensor_msgs/msg/Image",
        GT_IDS_TOPIC: "sensor_msgs/msg/Image",
        GT_SEMANTICS_TOPIC: "sensor_msgs/msg/Image",
    }
    frames = list(read_bag_frames(bag, topic=IMAGE_TOPIC))
    expected = list(root.frames(seq))
    assert [f.stamp_ns for f in frames] == [i * 100_000_000 for i in range(5)]
    for got, want in zip(frames, expected, strict=True):
        np.testing.assert_array_equal(got.image, want.image)
    labels = list(read_bag_labels(bag, topic=GT_IDS_TOPIC))
    for (stamp, ids), (_, want_ids, _), frame in zip(labels, root.annotations(seq), frames, strict=True):
        assert stamp == frame.stamp_ns
        np.testing.assert_array_equal(ids, want_ids)
    semantics = [s for _, s in read_bag_labels(bag, topic=GT_SEMANTICS_TOPIC)]
    assert len(semantics) == 5 and semantics[0].max() >= 1


def test_single_sequence_and_compressed(synth_root, tmp_path):
    root = DavisRoot(synth_root)
    seq = root.sequences[0]
    written = make_bags(synth_root, tmp_path / "one", spec=BagSpec(encoding="jpeg"), sequence=seq)
    assert written == {seq: tmp_path / "one"}
    assert image_topics(tmp_path / "one")[IMAGE_TOPIC] == "sensor_msgs/msg/CompressedImage"
    assert len(list(read_bag_frames(tmp_path / "one", topic=IMAGE_TOPIC))) == 5


def test_image_folder_without_ground_truth(synth_root, tmp_path):
    folder = synth_root / "JPEGImages" / "480p" / DavisRoot(synth_root).sequences[0]
    written = make_bags(folder, tmp_path / "folder_bag")
    assert image_topics(written[folder.stem]) == {IMAGE_TOPIC: "sensor_msgs/msg/Image"}


def test_cli_errors(synth_root, tmp_path, capsys):
    assert main(["bag", "make", str(tmp_path / "missing"), str(tmp_path / "x")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["bag", "make", str(synth_root), str(tmp_path / "y"), "--sequence", "nope"]) == 2
    assert "no sequence 'nope'" in capsys.readouterr().err
    assert main(["bag", "make", str(synth_root), str(tmp_path / "z"), "--sequence",
                 DavisRoot(synth_root).sequences[0]]) == 0
    assert main(["bag", "make", str(synth_root), str(tmp_path / "z"), "--sequence",
                 DavisRoot(synth_root).sequences[0]]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["bag", "make", str(tmp_path / "z"), str(tmp_path / "w")]) == 2
    assert "rosbag2 already" in capsys.readouterr().err
