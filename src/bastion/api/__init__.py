"""The HTTP layer: the only part of Bastion that knows about requests."""
