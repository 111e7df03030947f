"""Streaming safety pre-check of YAML files taken from an uploaded application package.

tosca-parser and ``yaml.safe_load`` build the whole document in memory and expand aliases, so a small
file can explode ("billion laughs") or recurse deeply. :func:`check_yaml_file` walks the parser's event
stream instead (memory stays flat) and refuses a file before anything builds it. The AppD loader
(``meao.catalogue.appd``) runs it on the entry file and on every local import of a package.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from meao.problems import OnboardingError

MiB = 1024 * 1024
DEFAULT_MAX_BYTES = 4 * MiB
DEFAULT_MAX_ALIASES = 100
DEFAULT_MAX_DEPTH = 64
# Upper bound on the number of nodes the document would have once every alias is expanded; it catches
# alias bombs that stay under max_aliases by nesting a few aliases per level.
DEFAULT_MAX_EXPANDED_NODES = 1_000_000


def check_yaml_file(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, max_aliases: int = DEFAULT_MAX_ALIASES,
                    max_depth: int = DEFAULT_MAX_DEPTH,
                    max_expanded_nodes: int = DEFAULT_MAX_EXPANDED_NODES,
                    display_name: str | None = None) -> None:
    """Refuse a YAML file that is too large, an alias bomb, nested too deeply, or not UTF-8 YAML.

    Only events are inspected (``yaml.parse``), nothing is constructed. Raises
    :class:`meao.problems.OnboardingError` whose detail names the file (``display_name`` if given,
    e.g. the path inside the package, else ``path``) and the rule it broke. A file with more than one
    YAML document is refused too: TOSCA service templates and AppD documents are single documents.
    """
    name = display_name or str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise OnboardingError(f"{name}: cannot read the file ({exc.strerror or exc})") from exc
    if size > max_bytes:
        raise OnboardingError(f"{name}: YAML file is {size} bytes, larger than the {max_bytes} bytes allowed")

    # Per open collection: [expanded node count, deepest expanded nesting below it, anchor or None].
    stack: list[list] = []
    anchors: dict[str, tuple[int, int]] = {}
    aliases = 0
    documents = 0
    total_nodes = 0

    def close_node(count: int, depth: int, anchor: str | None) -> None:
        nonlocal total_nodes
        if anchor is not None:
            anchors[anchor] = (count, depth)
        if stack:
            stack[-1][0] += count
            stack[-1][1] = max(stack[-1][1], depth + 1)
        else:
            total_nodes += count

    try:
        with path.open("r", encoding="utf-8", errors="strict") as stream:
            for event in yaml.parse(stream, Loader=yaml.SafeLoader):
                if isinstance(event, yaml.DocumentStartEvent):
                    documents += 1
                    if documents > 1:
                        raise OnboardingError(f"{name}: more than one YAML document in the file")
                elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                    stack.append([1, 0, event.anchor])
                    if len(stack) > max_depth:
                        raise OnboardingError(
                            f"{name}: YAML nesting deeper than {max_depth} levels (line {_line(event)})")
                elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                    count, depth, anchor = stack.pop()
                    close_node(count, depth, anchor)
                elif isinstance(event, yaml.ScalarEvent):
                    close_node(1, 0, event.anchor)
                elif isinstance(event, yaml.AliasEvent):
                    aliases += 1
                    if aliases > max_aliases:
                        raise OnboardingError(
                            f"{name}: more than {max_aliases} YAML aliases (line {_line(event)}); "
                            "alias-heavy documents are refused as a possible alias bomb")
                    count, depth = anchors.get(event.anchor, (1, 0))
                    if len(stack) + depth > max_depth:
                        raise OnboardingError(
                            f"{name}: YAML alias *{event.anchor} expands to nesting deeper than "
                            f"{max_depth} levels (line {_line(event)})")
                    close_node(count, depth, None)
                else:
                    continue
                if total_nodes + sum(entry[0] for entry in stack) > max_expanded_nodes:
                    raise OnboardingError(
                        f"{name}: YAML document expands to more than {max_expanded_nodes} nodes "
                        f"(line {_line(event)}); refused as a possible alias bomb")
    except UnicodeDecodeError as exc:
        raise OnboardingError(f"{name}: not valid UTF-8 text (byte offset {exc.start})") from exc
    except yaml.YAMLError as exc:
        raise OnboardingError(f"{name}: not valid YAML: {_yaml_problem(exc)}") from exc


def _line(event: yaml.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark else 0


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One-line description of a PyYAML error, with its 1-based line and column."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(problem)
