"""A PBX simulator that speaks real AMI + FastAGI and ESL on TCP, driven by a seeded callee model."""
