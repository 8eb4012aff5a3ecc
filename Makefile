# VSIS: the two commands a fresh machine needs.
#   make test   set everything up (.venv, PyTorch, ROS 2 wheels, colcon ros_ws) and run the tests
#   make demo   set everything up and run the demo job
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup test demo clean

help:
	@echo "make test   - set up .venv + ROS 2 workspace and run the test suite"
	@echo "make demo   - set up and run the demo (output in out/demo)"
	@echo "make clean  - remove build outputs (keeps .venv)"

setup:
	@bash scripts/setup.sh

# Tests keep DDS discovery on this machine and choose their own domain ids (tests/conftest.py).
test: setup
	@. scripts/env.sh && ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST VSIS_REQUIRE_ROS=1 \
		python -m pytest -q -p no:cacheprovider

demo: setup
	@. scripts/env.sh && bash scripts/demo.sh out/demo

clean:
	rm -rf ros_ws/build ros_ws/install ros_ws/log out .stamps/colcon
