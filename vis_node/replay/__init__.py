"""Rosbag2 round trips: turn inputs into bags (``vsis bag make``) and replay bags through
the ROS graph for evaluation (``vsis replay``)."""
