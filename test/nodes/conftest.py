"""The graph tests' fixtures. They and the helpers live in test/node_graph.py, a module with a name of
its own, so a test file of any folder imports the helpers without another folder's conftest module."""

from node_graph import graph, listener  # noqa: F401  (fixtures)
