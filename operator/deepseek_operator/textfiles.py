"""Reading the text files users hand to the commands: UTF-8 only, bounded, YAML with unique keys.

Every command that reads a file (a scenario, a what-if, a deployment, pools, a trace, a cluster
config, a PoolProfile to update) comes here, so a directory, a binary file, a file too large to
be what it claims, or a YAML mapping that states one key twice is refused the same way
everywhere, with the path in the message. PyYAML's own loader keeps the last of two equal keys,
which silently drops the first value a user wrote; here that is an error naming the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node

YAML_MAX_BYTES = 8 * 1024 * 1024
"""A CRD file, a scenario or a cluster config is a few kilobytes; 8 MiB is far beyond any real
one and keeps a stray multi-gigabyte file from being read into memory."""


class FileProblem(ValueError):
    """A file that cannot be read as text; the message names the path and why."""


def read_utf8(path: Path, max_bytes: int = YAML_MAX_BYTES) -> str:
    """The whole file as text; `FileProblem` if it is missing, a directory, larger than
    `max_bytes` or not UTF-8."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as error:
        raise FileProblem(f"cannot read {path}: {error.strerror or error}") from None
    if len(raw) > max_bytes:
        raise FileProblem(f"{path} is larger than {max_bytes // (1024 * 1024)} MiB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FileProblem(
            f"{path} is not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start})"
        ) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """The safe loader, refusing a mapping that states the same key twice.

    Merge keys (`<<: *defaults`) still work: a merged value may be overridden by an explicit
    key, which is what merging is for; only two explicit keys collide.
    """

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base loader reports it
                    continue
                if first is not None:
                    raise ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found the key {key!r} twice (first on line {first.start_mark.line + 1})",
                        key_node.start_mark,
                    )
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]


def parse_yaml(text: str) -> Any:
    """The one YAML document in `text` (None when it is empty); raises `yaml.YAMLError`."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass


def parse_yaml_documents(text: str) -> list[Any]:
    """Every document of a multi-document YAML text, empty ones included."""
    return list(yaml.load_all(text, Loader=_UniqueKeyLoader))
