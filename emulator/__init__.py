"""meter-emu: runs the unmodified meter firmware on the real MicroPython VM as a chosen dev board."""
