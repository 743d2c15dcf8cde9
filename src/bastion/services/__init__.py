"""Use-cases: async, framework-free, depending on storage protocols only."""
