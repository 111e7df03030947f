"""tosca-parser, offline and serialised, its errors captured as text that names the node at fault.

tosca-parser collects errors in a process-wide ExceptionCollector, so one AppD is read at a time
(:func:`exclusive_parser`). Its messages often name a value but not the node; while the lock is held,
each collected error is tagged with the node template being validated. Sizes and times are read with
tosca-parser's scalar units in both AppD forms.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_TOSCA_LOCK = threading.Lock()
_node_in_validation: list[str | None] = [None]


class ToscaErrors(Exception):
    """tosca-parser refused the template; ``messages`` are its errors as text."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


@contextmanager
def exclusive_parser() -> Iterator[None]:
    """Hold tosca-parser for one AppD, with each collected error tagged with its node template."""
    with _TOSCA_LOCK, _node_tracking():
        yield


def _exception_text(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    text = " ".join(str(text).split())
    node = getattr(exc, "meao_node", None)
    return f"node '{node}': {text}" if node and node not in text else text


@contextmanager
def _node_tracking() -> Iterator[None]:
    """Tag each error tosca-parser collects with the node template being validated at the time.

    tosca-parser's messages often name a value but not the node; the detail should say where. The
    hooks are installed only while the parse lock is held and are removed afterwards.
    """
    from toscaparser.common.exception import ExceptionCollector
    from toscaparser.nodetemplate import NodeTemplate

    original_validate = NodeTemplate.validate
    original_append = ExceptionCollector.appendException

    def validate(self: Any, tosca_tpl: Any = None) -> Any:
        _node_in_validation[0] = self.name
        try:
            return original_validate(self, tosca_tpl)
        except Exception as exc:  # tosca-parser crashes on some wrong types; keep the node for the report
            exc.meao_node = self.name  # type: ignore[attr-defined]
            exc.meao_where = _crashing_property(self)  # type: ignore[attr-defined]
            raise
        finally:
            _node_in_validation[0] = None

    def append(exception: BaseException) -> None:
        if _node_in_validation[0] and not hasattr(exception, "meao_node"):
            try:
                exception.meao_node = _node_in_validation[0]  # type: ignore[attr-defined]
            except AttributeError:
                pass
        original_append(exception)

    NodeTemplate.validate = validate
    ExceptionCollector.appendException = staticmethod(append)
    try:
        yield
    finally:
        NodeTemplate.validate = original_validate
        ExceptionCollector.appendException = staticmethod(original_append)


def _crashing_property(node: Any) -> str | None:
    """Which property of ``node`` makes tosca-parser crash, probed one at a time (for the report)."""
    probes: list[tuple[str, Any]] = []
    try:
        probes += [(f"property '{prop.name}'", prop) for prop in node.get_properties_objects()]
        for capability in node.get_capabilities_objects():
            probes += [(f"capability '{capability.name}' property '{prop.name}'", prop)
                       for prop in capability.get_properties_objects()]
    except Exception:  # noqa: BLE001 - the probe is best effort; the crash itself is reported anyway
        return None
    for where, prop in probes:
        try:
            prop.validate()
        except Exception:  # noqa: BLE001 - finding the crashing property is the point of the probe
            value = repr(prop.value)
            return f"{where} (value {value if len(value) <= 160 else value[:157] + '...'})"
    return None


def parse_tosca(entry_path: Path, local_defs: dict[str, str]) -> Any:
    """Run tosca-parser on the extracted entry file with the offline URL map (never the zip)."""
    from toscaparser.common.exception import ExceptionCollector, MissingRequiredInputError
    from toscaparser.tosca_template import ToscaTemplate

    class AppDTemplate(ToscaTemplate):
        def verify_template(self) -> None:
            # MEC 037 AppDs set the app node's required properties (mec_version) on the node template,
            # not through topology inputs; tosca-parser's substitution-mapping input check would refuse
            # every standard AppD (Annex A included), so that one check is not applied.
            kept = [exc for exc in ExceptionCollector.exceptions
                    if not (isinstance(exc, MissingRequiredInputError)
                            and "SubstitutionMappings" in str(exc))]
            if kept:
                raise ToscaErrors([_exception_text(exc) for exc in kept])

    return AppDTemplate(str(entry_path), local_defs=local_defs)



def crash_detail(entry: str, exc: BaseException) -> str:
    """The detail for an exception tosca-parser raised or crashed with, naming node and property."""
    node = getattr(exc, "meao_node", None)
    where = f"node '{node}': " if node else ""
    if getattr(exc, "meao_where", None):
        where += f"{exc.meao_where}: "  # type: ignore[attr-defined]
    text = _exception_text(exc) if not node else " ".join(str(getattr(exc, "message", None) or exc).split())
    if isinstance(exc, (TypeError, AttributeError, KeyError, IndexError)):
        return (f"{entry}: {where}tosca-parser could not process the AppD ({type(exc).__name__}: {text}); "
                "typically a value of the wrong kind (a string where a number or list is expected, a map "
                "where a list is expected) or an unknown type")
    return f"{entry}: {where}invalid TOSCA AppD: {text}"


def clear_tosca_errors() -> None:
    """Stop and empty tosca-parser's ExceptionCollector, so the next parse starts clean."""
    from toscaparser.common.exception import ExceptionCollector

    ExceptionCollector.stop()
    del ExceptionCollector.exceptions[:]


def data_type_problems(type_name: str, values: dict[str, Any], custom_defs: dict[str, Any]) -> list[str]:
    """What tosca-parser finds wrong with ``values`` as a ``type_name`` data type (empty: valid)."""
    from toscaparser.common.exception import ExceptionCollector
    from toscaparser.dataentity import DataEntity

    ExceptionCollector.start()
    try:
        DataEntity(type_name, values, custom_defs).validate()
    except (TypeError, AttributeError, ValueError, KeyError) as exc:  # crash on a wrong kind of value
        ExceptionCollector.exceptions.append(exc)
    finally:
        problems = [_exception_text(exc) for exc in ExceptionCollector.exceptions]
        clear_tosca_errors()
    return problems


def scalar_size(value: Any, unit: str) -> int:
    """A scalar-unit.size in ``unit``, rounded up; tosca-parser's exception on a value it refuses."""
    from toscaparser.elements.scalarunit import ScalarUnit_Size

    return math.ceil(ScalarUnit_Size(value).get_num_from_scalar_unit(unit))


def scalar_seconds(value: Any) -> int:
    """A scalar-unit.time in seconds, rounded up; tosca-parser's exception on a value it refuses."""
    from toscaparser.elements.scalarunit import ScalarUnit_Time

    return math.ceil(ScalarUnit_Time(value).get_num_from_scalar_unit("s"))
