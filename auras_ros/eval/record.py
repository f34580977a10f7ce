"""Record simulator episodes (camera, ground truth with the expert's actions, /clock, scores) into a
rosbag2 mcap bag, ROS-free:

    python -m auras_ros.eval.record --episodes N --out DIR [--seed S] [--max-frames F] [--image-size PX]

Chunks carry CRCs, which the bag checks verify. A write that fails (a full disk) ends the recording with
one line and exit status 1; the bag is finished with what was written before (mcap summary and
metadata.yaml), so it stays readable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from auras_ros.eval.task_config import TaskConfig
from auras_ros.eval.bag import record
from auras_ros.eval.bag_writer import RecordingCut


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="bag directory to create (must not exist)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    parser.add_argument("--max-frames", type=int, default=TaskConfig.max_frames)
    parser.add_argument("--image-size", type=int, default=TaskConfig.image_size)
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists: rosbag2 writes a new directory")
    config = TaskConfig(image_size=args.image_size, max_frames=args.max_frames)
    try:
        scores = record(args.out, args.episodes, args.seed, config)
    except RecordingCut as error:  # a full disk: the bag holds (or could not hold) what was written before
        print(f"record: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # before anything was written: the folder or the file could not be made
        print(f"record: cannot write {args.out}: {error.strerror or error}", file=sys.stderr)
        return 1
    for s in scores:
        print(f"episode {s['episode']} seed {s['seed']}: success={s['success']} frames={s['frames']} "
              f"tracking error {s['tracking_error']:.3f}")
    print(f"recorded {len(scores)} episodes into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
