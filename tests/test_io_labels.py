"""Label-PNG conventions: palette / 16-bit instance ids, void, binary DAVIS-2016 masks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vis_node.structures.errors import InputDataError
from vis_node.io.labels import (
    read_label_folder,
    read_label_png,
    read_semantic_png,
    wrap_track_ids,
    write_instance_png,
    write_semantic_png,
)

def test_small_ids_written_as_palette_and_read_back(tmp_path):
    ids = np.array([[0, 1, 2], [3, 254, 0]], np.uint16)
    write_instance_png(tmp_path / "a.png", ids)
    with Image.open(tmp_path / "a.png") as image:
        assert image.mode == "P"
    got, void = read_label_png(tmp_path / "a.png")
    np.testing.assert_array_equal(got, ids)
    assert got.dtype == np.uint16 and void is None


def test_large_ids_written_as_16_bit(tmp_path):
    ids = np.array([[0, 255], [1000, 65535]], np.uint16)
    write_instance_png(tmp_path / "b.png", ids)
    with Image.open(tmp_path / "b.png") as image:
        assert image.mode.startswith("I")
    got, void = read_label_png(tmp_path / "b.png")
    np.testing.assert_array_equal(got, ids)
    assert void is None


def test_palette_255_is_void(tmp_path):
    raw = np.array([[0, 1], [255, 2]], np.uint8)
    image = Image.fromarray(raw, mode="P")
    image.putpalette([0] * 768)
    image.save(tmp_path / "v.png")
    ids, void = read_label_png(tmp_path / "v.png")
    np.testing.assert_array_equal(ids, [[0, 1], [0, 2]])
    np.testing.assert_array_equal(void, [[False, False], [True, False]])


def test_binary_grey_mask_is_one_object(tmp_path):
    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8), mode="L").save(tmp_path / "m.png")
    ids, void = read_label_png(tmp_path / "m.png")
    np.testing.assert_array_equal(ids, [[0, 1], [1, 0]])
    assert void is None


def test_real_davis2016_annotation_reads_as_one_object(davis2016_root):
    ids, void = read_label_png(davis2016_root / "Annotations/480p/blackswan/00000.png")
    assert ids.shape == (480, 854)
    assert set(np.unique(ids).tolist()) == {0, 1}
    assert void is None


def test_semantic_round_trip(tmp_path):
    classes = np.array([[0, 3], [7, 1]], np.uint8)
    write_semantic_png(tmp_path / "s.png", classes)
    np.testing.assert_array_equal(read_semantic_png(tmp_path / "s.png"), classes)


def test_bad_files_raise_input_error_naming_the_file(tmp_path):
    with pytest.raises(InputDataError, match="missing.png: file not found"):
        read_label_png(tmp_path / "missing.png")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(InputDataError, match="corrupt.png"):
        read_label_png(tmp_path / "corrupt.png")
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(InputDataError, match="single-channel"):
        read_label_png(tmp_path / "rgb.png")


def test_writers_reject_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match="0..65535"):
        write_instance_png(tmp_path / "x.png", np.array([[-1]]))
    with pytest.raises(ValueError, match="2-D"):
        write_semantic_png(tmp_path / "x.png", np.zeros((2, 2, 3)))


def test_label_folder_index(tmp_path):
    for seq, names in {"a": ["00001", "00000"], "b": ["00000"]}.items():
        for name in names:
            write_instance_png(tmp_path / seq / f"{name}.png", np.zeros((2, 2), np.uint16))
    (tmp_path / "empty").mkdir()
    index = read_label_folder(tmp_path)
    assert list(index) == ["a", "b"]
    assert [name for name, _ in index["a"]] == ["00000", "00001"]
    with pytest.raises(InputDataError, match="no <sequence>/<frame>.png"):
        read_label_folder(tmp_path / "empty")


def test_wrap_track_ids_cycles_over_1_to_65535():
    np.testing.assert_array_equal(
        wrap_track_ids(np.array([0, 1, 65535, 65536, 65537, 131070, 131071])),
        [0, 1, 65535, 1, 2, 65535, 1],
    )
    assert wrap_track_ids(70000).dtype == np.uint16
