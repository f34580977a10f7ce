"""The QoS of every auras_ros topic, in one place (the README's table is written from this)."""

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

# Camera input: best effort, latest only — a late frame is worth less than the next one.
SENSOR_LATEST = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT)
# Percepts, context snapshots, frame ticks: reliable, latest only — stale ones are never wanted.
LATEST_RELIABLE = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
# Actions and stats: reliable, a short queue, so a slow reader sees every decision in order.
ORDERED = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
# Context snapshots also reach late joiners (a generation node started after the context node).
LATCHED = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
