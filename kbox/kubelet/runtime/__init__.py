"""Container runtimes behind one CRI-shaped interface: Docker (real containers) and fake (simulated)."""
