# VSIS container (desktop x86-64). It runs the same scripts/setup.sh as `make test`,
# so the image holds exactly what a developer machine has: .venv with PyTorch (CUDA
# build from PyPI), the ROS 2 Jazzy wheels and the colcon-built vis_msgs.
#
#   docker build -t vsis .
#   docker run --rm -v "$PWD/out:/opt/vsis/out" vsis synth out/synth --videos 2
#
# Not built in this project's CI (no Docker engine there); keep it in step with
# scripts/setup.sh. GPU use needs the NVIDIA container toolkit (`--gpus all`).
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake git make libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/vsis
COPY . .
RUN bash scripts/setup.sh

ENV ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST \
    ROS_LOCALHOST_ONLY=1
ENTRYPOINT ["bash", "-c", ". scripts/env.sh && exec vsis \"$@\"", "vsis"]
CMD ["--help"]
