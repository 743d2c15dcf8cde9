"""Routers, each built around a :class:`bastion.api.app.Bastion`."""
