"""Application descriptors (AppD) of MEC application packages: one model, two source forms.

An AppD reaches meao either as a TOSCA service template (ETSI GS MEC 037 V3.2.1 clause 5, parsed
offline with tosca-parser against meao's own type files in ``descriptors/types``) or as a MEC 010-2
AppD document (ETSI GS MEC 010-2 V3.1.1 clause 6.2.1, JSON or YAML). Both map to :class:`AppD`.

model: the typed AppD and its stored form · wire: TOSCA -> MEC 010-2 JSON names · files: package
paths and guarded reading · imports: offline type files and the remote import policy · tosca_parser:
tosca-parser, serialised · tosca, tosca_nodes: the TOSCA AppD · document: the MEC 010-2 document ·
load: the entry point.
"""

from meao.catalogue.appd.imports import REMOTE_IMPORTS
from meao.catalogue.appd.load import load_appd
from meao.catalogue.appd.model import AppD, AppDError, Checksum, ExtCpd, SwImage, VirtualCompute
from meao.catalogue.appd.wire import WIRE_NAMES, to_mec010_2

__all__: list[str] = [
    "REMOTE_IMPORTS",
    "WIRE_NAMES",
    "AppD",
    "AppDError",
    "Checksum",
    "ExtCpd",
    "SwImage",
    "VirtualCompute",
    "load_appd",
    "to_mec010_2",
]
