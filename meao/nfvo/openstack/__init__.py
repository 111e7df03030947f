"""The OpenStack VIM driver (openstacksdk): one module per OpenStack service, joined in ``driver``."""
