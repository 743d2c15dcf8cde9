"""Storage: protocols the services depend on, and their implementations."""
