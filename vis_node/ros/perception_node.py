"""Perception node: camera images in, per-frame salient instances out.

Subscribes ``image`` (``sensor_msgs/Image``: rgb8, bgr8, rgba8, bgra8, mono8) and
``image/compressed`` (``sensor_msgs/CompressedImage``, JPEG / PNG); publishes
``instances`` (``vis_msgs/SalientInstanceArray``, header = the input image's header).

Inference runs in its own thread fed through a one-slot buffer: a frame arriving
while the model is busy replaces the waiting one (counted as dropped), so the node
always processes the newest frame and latency stays bounded by about two inference
times. The model loads on activate and is freed on deactivate.

Run: ``vsis ros perception --params launch/config/perception.yaml``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from sensor_msgs.msg import CompressedImage, Image
from vis_msgs.msg import SalientInstanceArray

from vis_node.ros.base_node import VsisNode, run_standalone, stamp_ns
from vis_node.ros.input_guard import decode_image_msg
from vis_node.ros.instances_msg import instances_to_msg
from vis_node.ros.params import PERCEPTION
from vis_node.ros.predictors import Backend, check_model_spec, load_backend
from vis_node.ros.stamps import LatestSlot


class PerceptionNode(VsisNode):
    """Lifecycle node running a predictor backend on the newest camera frame.

    Parameters
    ----------
    node_name:
        ROS node name (default ``vsis_perception``).
    **kwargs:
        Passed to ``rclpy.lifecycle.LifecycleNode``.
    """

    def __init__(self, node_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(PERCEPTION, node_name, **kwargs)
        self._publisher: Any = None
        self._backend: Backend | None = None
        self._slot: LatestSlot[Image | CompressedImage] = LatestSlot()
        self._worker: threading.Thread | None = None

    def configure_node(self) -> None:
        check_model_spec(self.config["model"])
        self._publisher = self.create_lifecycle_publisher(
            SalientInstanceArray, "instances", self.qos
        )

    def activate_node(self) -> None:
        self._backend = load_backend(
            self.config["model"],
            runtime=self.config["runtime"],
            device=self.config["device"],
            gt_sequence=self.config["gt_sequence"],
            gt_fps=self.config["gt_fps"],
            gt_seed=self.config["gt_seed"],
        )
        self.get_logger().info(
            f"model '{self._backend.name}' loaded ({len(self._backend.class_names)} classes)"
        )
        self._slot.reopen()
        self._worker = threading.Thread(target=self._run, name="vsis-inference", daemon=True)
        self._worker.start()
        self.subscribe(Image, "image", self._on_image, self.qos)
        self.subscribe(CompressedImage, "image/compressed", self._on_compressed, self.qos)

    def deactivate_node(self) -> None:
        self._slot.close()
        if self._worker is not None:
            self._worker.join()
            self._worker = None
        self._backend = None
        if str(self.config.get("device", "cpu")).startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def cleanup_node(self) -> None:
        self._publisher = None

    def _on_image(self, msg: Image) -> None:
        if self.check_header("image", msg.header) and self._slot.put(msg):
            self.stats.add_dropped()

    def _on_compressed(self, msg: CompressedImage) -> None:
        if self.check_header("image/compressed", msg.header) and self._slot.put(msg):
            self.stats.add_dropped()

    def _run(self) -> None:
        """Inference loop: take the newest frame, decode, predict, publish."""
        while True:
            msg = self._slot.take()
            if msg is None:
                return
            self.guard.call("inference", self._process, msg)

    def _process(self, msg: Image | CompressedImage) -> None:
        backend = self._backend
        if backend is None:
            return
        topic = "image" if isinstance(msg, Image) else "image/compressed"
        with self.stats.stage("decode"):
            image, rejection = decode_image_msg(msg, self.budget.max_image_pixels)
        if rejection is not None:
            self.reject(topic, rejection)
            return
        with self.stats.stage("inference"):
            instances = backend.predict(image, stamp_ns(msg.header))
        with self.stats.stage("publish"):
            out = instances_to_msg(
                instances,
                msg.header,
                backend.class_names,
                mask_encoding=self.config["mask_encoding"],
            )
            self._publisher.publish(out)
        self.stats.frame_done()


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of the ``perception_node`` executable."""
    return run_standalone(PerceptionNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
