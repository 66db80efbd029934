# The loader layer: boot selection, slot store, image checks, recovery mode and the SMP core. It stays on the device
# across application updates; the application states the LOADER_API it needs.
LOADER_API = 2
# the loader's own version (a loader image carries its own)
VERSION = "1.0.0"
