"""Scaling out: batch arithmetic, precision, FSDP wrapping, MFU, and Hydra-safe DDP launches."""
