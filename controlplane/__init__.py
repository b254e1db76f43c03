"""The mocked KubeFlex Control Plane: a real HTTP service with an SQLite store."""
