"""The test bed's Nova virt driver: Nova's fake driver with a chosen host size and a failure switch.

- Size from the environment (MEAO_TESTBED_HOST_VCPUS / _RAM_MB / _DISK_GB), so tests can make hosts
  small enough to hit capacity limits quickly.
- Stable node identity (uuid5 of the node name, and the compute_id file Nova checks for), so a
  stopped test bed restarts on its kept databases; Nova's own fake drivers make a new random node
  uuid each start and refuse that.
- A server whose name starts with ``testbed-fail-spawn`` fails to build and goes to ERROR with a
  fault message (as a broken image would), so tests can prove how meao reports server faults.
"""

import os
import uuid

import nova.virt.node
from nova import exception
from nova.virt import fake

FAIL_SPAWN_PREFIX = "testbed-fail-spawn"
NODE_NAMESPACE = uuid.UUID("5b0f8a4e-4a57-4d7c-9d0e-6d656165746e")


def node_uuid(nodename: str) -> str:
    return str(uuid.uuid5(NODE_NAMESPACE, nodename))


class SizedFakeDriver(fake.FakeDriver):
    vcpus = int(os.environ.get("MEAO_TESTBED_HOST_VCPUS", "2"))
    memory_mb = int(os.environ.get("MEAO_TESTBED_HOST_RAM_MB", "8192"))
    local_gb = int(os.environ.get("MEAO_TESTBED_HOST_DISK_GB", "1028"))

    def init_host(self, host):
        nova.virt.node.get_local_node_uuid()  # writes state_path/compute_id on the first start
        return super().init_host(host)

    def get_nodenames_by_uuid(self, refresh=False):
        return {node_uuid(n): n for n in self.get_available_nodes()}

    def get_available_resource(self, nodename):
        resources = super().get_available_resource(nodename)
        if resources:
            resources["uuid"] = node_uuid(nodename)
        return resources

    def spawn(self, context, instance, image_meta, *args, **kwargs):
        if (instance.display_name or "").startswith(FAIL_SPAWN_PREFIX):
            # Nova aborts the build (no reschedule) on an unacceptable image.
            raise exception.ImageUnacceptable(image_id=instance.image_ref,
                                              reason="the test bed was asked to fail this boot")
        return super().spawn(context, instance, image_meta, *args, **kwargs)
