"""Evaluation: the embedded MuJoCo task, trained policies, closed-loop evaluation, tuner and report."""
