"""The QoS of every auras_ros topic, in one place (the README's table is written from this)."""

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

# Camera input: best effort, latest only — a late frame is worth less than the next one. Best effort also
# matches every camera (a reliable subscription would not match a best-effort driver). Large frames need
# no deeper queue and no reliability but a publisher's shared-memory segment that holds them
# (transport/dds_limits.py, config/fastdds_shm_profile.xml): measured, 90 of 90 at 30 Hz (README).
SENSOR_LATEST = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT)
# Percepts, context snapshots, frame ticks: reliable, latest only — stale ones are never wanted.
LATEST_RELIABLE = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
# Actions and stats: reliable, a short queue, so a slow reader sees every decision in order.
ORDERED = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
# Context snapshots also reach late joiners (a generation node started after the context node).
LATCHED = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
