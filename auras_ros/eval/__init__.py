"""Evaluation, ROS-free: the embedded MuJoCo task (task, realtime_world), turning decisions into
commands (actuation, which sim/ uses alone), running episodes of any executor spec (episodes), their
results and JSON (results), the Markdown and plots (report), the trained policies (policies, train,
demos, oracle) and the command lines (closed_loop, realtime, tuner)."""
