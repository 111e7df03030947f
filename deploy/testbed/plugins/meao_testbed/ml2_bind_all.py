"""An ML2 mechanism driver that binds every port as an OVS port and marks it ACTIVE.

No shipped driver binds a port without a live L2 agent, and Nova fails a boot whose port stays
unbound; the test bed has no agents, so this driver stands in for them.
"""

from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class BindAllMechanismDriver(api.MechanismDriver):
    """Binds any port on the first segment offered, with vif_type ``ovs``."""

    def initialize(self) -> None:
        pass

    @property
    def connectivity(self) -> str:
        return portbindings.CONNECTIVITY_L2

    def bind_port(self, context) -> None:
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OVS,
                                {portbindings.CAP_PORT_FILTER: True}, status=constants.PORT_STATUS_ACTIVE)
            return
