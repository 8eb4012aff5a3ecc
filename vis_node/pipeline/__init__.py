"""ROS-free VSIS pipelines: frames -> predictor -> tracker -> unification -> outputs.

* :class:`~vis_node.pipeline.online.OnlinePipeline`: one frame at a time (what the ROS
  nodes run).
* :class:`~vis_node.pipeline.offline.OfflinePipeline`: whole sequences, with SISO
  recurrent instance propagation and offline unification.
* :class:`~vis_node.pipeline.outputs.OutputWriter`: the ``vsis run`` output layout.
"""
