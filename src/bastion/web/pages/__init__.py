"""Page routes, one module per area."""
