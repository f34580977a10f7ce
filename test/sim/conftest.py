"""Fixtures of the simulator tests: the test-process listener of test/nodes."""

from sim_helpers import node_graph

listener = node_graph.listener
