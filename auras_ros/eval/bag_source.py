"""The bag's camera as the executors' observation source, in the agent's input form: the one source of
the stepped replay (:mod:`auras_ros.eval.bag_eval`) and the timed one (:mod:`auras_ros.eval.bag_timed`)."""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterator

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.core.inputs import InputSpec
from auras_ros.core.sources import StampedHistory
from auras_ros.core.stages import Observation
from auras_ros.eval.bag import BagFrame, BagInfo, camera_frames, state_samples
from auras_ros.eval.scoring import STAMP_TOLERANCE
from auras_ros.models.inputs import observation_data


class Refusals:
    """Inputs refused before a decision, by reason: how many, and the first one's error in full."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()  # (images | states, reason) -> refused
        self.first: dict[tuple[str, str], str] = {}

    def add(self, kind: str, reason: str, text: str) -> None:
        self.counts[kind, reason] += 1
        self.first.setdefault((kind, reason), text)

    def describe(self, totals: dict[str, int]) -> str:
        """One clause a reason: "all 1 images refused (image size): <the first error>", "3 of 8 states ..."."""
        parts = []
        for (kind, reason), n in self.counts.most_common():
            share = f"all {n} {kind}" if n == totals.get(kind) else f"{n} of {totals.get(kind, '?')} {kind}"
            parts.append(f"{share} refused ({reason}): {self.first[kind, reason]}")
        return "; ".join(parts)


class BagSource:
    """The bag's camera as an ObservationSource: ``latest(now)`` is the newest image logged by
    ``now + lead`` (bag log time, the replay's clock; its stamp stays the header's), in the agent's input
    form (:func:`observation_data`, the perception node's code), joined, for a model that takes a robot
    state, with the state sensed at its stamp (else the newest before), as the perception node's
    ``state_topic`` does. What cannot be put in that form is refused and counted in ``refusals``."""

    def __init__(self, info: BagInfo, spec: InputSpec, lead: float = 0.0) -> None:
        self.spec = spec
        self.lead = lead
        self.refusals = Refusals()
        for reason in info.bad_images.values():
            self.refusals.add("images", "undecodable", reason)
        self._frames: Iterator[BagFrame] = camera_frames(info, spec)
        self._next: BagFrame | None = next(self._frames, None)
        self._latest: Observation | None = None
        self._states: StampedHistory | None = None
        if spec.state is not None:
            if not info.state:
                raise ConfigError("topic map state", "", f"the robot's JointState topic: the model takes a "
                                  f"state of {spec.state.size} values beside the image")
            samples = state_samples(info)
            self._states = StampedHistory(max(len(samples), 1))  # every one: states often outnumber images
            for index, (stamp, names, position) in enumerate(samples):
                try:
                    self._states.add(stamp, spec.state.assemble(names, position, f"{info.state} message {index}"))
                except InputError as error:
                    self.refusals.add("states", error.what, str(error))

    @property
    def exhausted(self) -> bool:
        return self._next is None

    def latest(self, now: float) -> Observation | None:
        while self._next is not None and self._next.log_ns * 1e-9 <= now + self.lead + STAMP_TOLERANCE:
            frame = self._next
            self._next = next(self._frames, None)
            try:
                self._latest = Observation(frame.index, frame.stamp, self._data(frame))
            except InputError as error:
                self.refusals.add("images", error.what, str(error))
        return self._latest

    def _data(self, frame: BagFrame) -> Any:
        found = self._states.at(frame.stamp) if self._states is not None else None
        return observation_data(self.spec, frame.pixels, found[0] if found is not None else None,
                                f"camera message {frame.index}")
