# The loader layer: boot selection, slot store, image checks, recovery mode and the SMP core. It stays on the device
# across application updates; the application states the LOADER_API it needs.
LOADER_API = 2
# the loader's own version (a loader image carries its own)
VERSION = "1.0.0"


def forget(name):
    """Take module loader.`name` off the heap once its work is done (start-up only modules): out of sys.modules and
    off this package, so nothing refers to it; a later import loads it again."""
    import sys

    sys.modules.pop("loader." + name, None)
    try:
        delattr(sys.modules[__name__], name)
    except (AttributeError, KeyError):
        pass
