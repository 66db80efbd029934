# The loader layer: boot selection, slot store, image checks, recovery mode and the SMP core. It stays on the device
# across application updates; the application states the LOADER_API it needs.
LOADER_API = 2
# the loader's own version (a loader image carries its own)
VERSION = "1.0.0"


def forget(module):
    """Take `module` (a dotted name: "loader.early", "app.calibrate") off the heap once its work is done: out of
    sys.modules and off its package, so nothing the loader holds refers to it; a later import loads it again."""
    import sys

    if sys.modules.pop(module, None) is None:
        return  # never loaded (or forgotten already): its name is not looked up as an attribute, which would intern
        #         it, and a new string's interning can take a new qstr pool (kilobytes in one piece) from a
        #         heap that is short
    package, _, name = module.rpartition(".")
    try:
        delattr(sys.modules[package], name)
    except (AttributeError, KeyError):
        pass
