"""The graph tests' fixtures. They and the helpers live in node_graph.py, a module with a name of its
own, so a test file importing the helpers never gets another test directory's conftest module."""

from node_graph import graph, listener  # noqa: F401  (fixtures)
