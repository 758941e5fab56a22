"""The project each peer runs in for benchmarks/peers.py, configured by the PEER_CONFIG variable."""
