"""Capacity planning: memory per accelerator, TP degree, instances per node, nodes for peak QPS."""
