"""Plugins that let a real Neutron and Nova run on loopback without agents or hypervisors."""
