"""Measure raw-image loss per input QoS: frames sent / arrived / counted missing.

Two processes on this machine (DDS on localhost, the domain given): one publishes
``--frames`` rgb8 images at ``--rate`` Hz, the other subscribes with the same QoS and
counts what arrives; "counted" is what a VSIS node would report as
``frames_missing`` from the stamp gaps (:class:`vis_node.ros.stamps.StampClock`).

    python scripts/measure_input_qos.py --domain 23
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SIZES = {"640x480": (480, 640), "1280x720": (720, 1280)}
QOS = ("best_effort", "reliable")


def _profile(name: str):
    from rclpy.qos import QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy

    reliability = (
        QoSReliabilityPolicy.RELIABLE if name == "reliable" else QoSReliabilityPolicy.BEST_EFFORT
    )
    return QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=1, reliability=reliability)


def subscribe(qos: str, seconds: float) -> None:
    """Count images on ``image`` for ``seconds``; print JSON to stdout."""
    import rclpy
    from sensor_msgs.msg import Image

    from vis_node.ros.base_node import stamp_ns
    from vis_node.ros.stamps import StampClock

    rclpy.init()
    node = rclpy.create_node("qos_sink")
    clock = StampClock()
    counts = {"arrived": 0, "missing": 0}

    def on_image(msg: Image) -> None:
        counts["arrived"] += 1
        counts["missing"] += clock.check(stamp_ns(msg.header)).missing

    node.create_subscription(Image, "image", on_image, _profile(qos))
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    print(json.dumps(counts), flush=True)
    node.destroy_node()
    rclpy.shutdown()


def publish(qos: str, size: str, frames: int, rate: float) -> None:
    """Publish ``frames`` images once a subscriber is matched."""
    import numpy as np
    import rclpy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from vis_node.ros.convert import image_to_msg

    rclpy.init()
    node = rclpy.create_node("qos_source")
    publisher = node.create_publisher(Image, "image", _profile(qos))
    while publisher.get_subscription_count() < 1:
        rclpy.spin_once(node, timeout_sec=0.1)
    time.sleep(1.0)
    height, width = SIZES[size]
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)
    for k in range(frames):
        header = Header(frame_id="camera")
        header.stamp.sec, header.stamp.nanosec = divmod(10**12 + int(k * 1e9 / rate), 10**9)
        publisher.publish(image_to_msg(pixels, "rgb8", header))
        time.sleep(1.0 / rate)
    time.sleep(1.0)
    node.destroy_node()
    rclpy.shutdown()


def measure(domain: int, frames: int, rate: float) -> list[dict[str, object]]:
    """One publisher / subscriber pair per size and QoS; rows of the table."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    rows = []
    for size in SIZES:
        for qos in QOS:
            seconds = frames / rate + 8.0
            sink = subprocess.Popen(
                [sys.executable, __file__, "--role", "sub", "--qos", qos,
                 "--seconds", str(seconds)],
                stdout=subprocess.PIPE, text=True, env=env,
            )
            assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
            subprocess.run(
                [sys.executable, __file__, "--role", "pub", "--qos", qos, "--size", size,
                 "--frames", str(frames), "--rate", str(rate)],
                env=env, check=True,
            )
            counts = json.loads(sink.communicate()[0].strip().splitlines()[-1])
            rows.append({"size": size, "qos": qos, "sent": frames, **counts})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("run", "pub", "sub"), default="run")
    parser.add_argument("--qos", choices=QOS, default="best_effort")
    parser.add_argument("--size", choices=tuple(SIZES), default="640x480")
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--domain", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", "0")))
    args = parser.parse_args()
    if args.role == "sub":
        subscribe(args.qos, args.seconds)
    elif args.role == "pub":
        publish(args.qos, args.size, args.frames, args.rate)
    else:
        print("| size | input QoS (depth 1) | sent | arrived | counted missing |")
        print("|---|---|---|---|---|")
        for row in measure(args.domain, args.frames, args.rate):
            print(f"| {row['size']} | {row['qos']} | {row['sent']} | {row['arrived']} | "
                  f"{row['missing']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
