"""Stop sequences over streamed text: cut at the first match, never leak a partial match."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StopResult:
    text: str
    stopped: bool


class StopMatcher:
    """Feed generated text piece by piece; text that might begin a stop sequence is held back."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(stop for stop in stops if stop)
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> StopResult:
        if self.stopped:
            return StopResult("", True)
        if not self._stops:
            return StopResult(text, False)
        buffer = self._held + text
        # The stop that completes first wins (as if text arrived one character at a time);
        # among stops completing at the same character, the longer one.
        matches = [
            (index + len(stop), index) for stop in self._stops if (index := buffer.find(stop)) >= 0
        ]
        if matches:
            _, start = min(matches, key=lambda match: (match[0], match[1]))
            self.stopped = True
            self._held = ""
            return StopResult(buffer[:start], True)
        keep = max(partial_suffix(buffer, stop) for stop in self._stops)
        self._held = buffer[len(buffer) - keep :]
        return StopResult(buffer[: len(buffer) - keep], False)

    def finish(self) -> str:
        held, self._held = self._held, ""
        return "" if self.stopped else held


def partial_suffix(text: str, stop: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `stop`."""
    for length in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:length]):
            return length
    return 0
