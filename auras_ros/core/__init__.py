"""The Auras method, ROS-free: public context with staleness policies, the frame-clock pipeline
executor, the SEQ/DEC/PAR baselines and their metrics. Imports torch and numpy only, never rclpy."""
