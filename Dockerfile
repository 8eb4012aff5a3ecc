# VSIS for desktop / server NVIDIA GPUs (x86-64). It runs the same scripts/setup.sh as
# `make test`: .venv with PyTorch (the CUDA build from PyPI), the ROS 2 Jazzy wheels,
# the colcon-built vis_msgs + vsis_bringup, and the TensorRT extra.
#
#   docker build -t vsis .
#   docker run --rm --gpus all --net host -v vsis-cache:/var/cache/vsis vsis   # the graph
#   docker run --rm --gpus all -v vsis-cache:/var/cache/vsis -v "$PWD/out:/opt/vsis/out" \
#       vsis vsis run data/ --out out/run
#
# TensorRT engines and ONNX exports are cached in the volume at /var/cache/vsis
# (VSIS_CACHE_DIR), so they are built once, not on every `docker run --rm`. ROS 2
# networking is left to you: pass -e ROS_DOMAIN_ID=... (and -e
# ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST to keep discovery on the host).
#
# The graph starts from launch/config/*.yaml (the same files the launch files
# use) with `vsis ros up`, because `ros2 launch` is not available as a wheel; on a full ROS 2
# install use `ros2 launch vsis_bringup vsis.launch.py` (see Dockerfile.jetson).
# Not built in this project's CI (no Docker engine there): keep it in step with
# scripts/setup.sh. The NVIDIA driver comes from the host (NVIDIA Container Toolkit).
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake git make libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/vsis
COPY . .
# On a GPU the perception node runs ONNX Runtime's TensorRT provider (engines built on first
# start, cached in /root/.cache/vsis/engines: docker run -v vsis-cache:/root/.cache/vsis ...).
RUN sed -i 's/^    runtime: onnx /    runtime: tensorrt /' launch/config/perception.yaml \
 && grep -q '^    runtime: tensorrt ' launch/config/perception.yaml
RUN VSIS_EXTRAS=tensorrt bash scripts/setup.sh

ENV VSIS_CACHE_DIR=/var/cache/vsis
VOLUME /var/cache/vsis
ENTRYPOINT ["bash", "-c", ". scripts/env.sh && exec \"$@\"", "vsis-entrypoint"]
CMD ["vsis", "ros", "up"]
