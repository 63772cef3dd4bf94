"""CPU and memory limit plugins (stevedore group ``pydistem.limits``)."""
