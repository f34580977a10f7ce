"""Agents split into perception and generation stages (see auras_ros.core.stages.Agent)."""
