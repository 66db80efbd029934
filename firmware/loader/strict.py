# Values from outside (SMP requests, signed envelopes, records read back from flash) are checked by type and value:
# 5, 5.0 and True are three different values here, as they are in CBOR. `isinstance(True, int)` is True on CPython
# and False on MicroPython, and `5.0 in range(7)` is True on both, so checks use `type(v) is int` and `same()`:
# the host tools (`ota verify`) and the meter then agree on every value.


def is_int(v, lo=None, hi=None):
    """v is an int (never a bool or a float), within lo..hi where given."""
    return type(v) is int and (lo is None or v >= lo) and (hi is None or v <= hi)


# the largest int is_number takes: every port's float holds it (single precision ends near 2**128). A JSON file can
# hold an int of any size; float() of a larger one is infinite on MicroPython and OverflowError on CPython.
_FLOAT_INT_MAX = 1 << 127


def is_number(v, lo=None, hi=None):
    """v is an int or a float (never a bool; never NaN or infinite; an int only where float(v) is finite on every
    port), within lo..hi where given."""
    if type(v) is float:
        if v != v or v in (float("inf"), float("-inf")):
            return False
    elif type(v) is not int or not -_FLOAT_INT_MAX <= v <= _FLOAT_INT_MAX:
        return False
    return (lo is None or v >= lo) and (hi is None or v <= hi)


def same(a, b):
    """a and b are the same value of the same type, recursively, dict keys included: `==` without 5 == 5.0 == True
    (nor 0.0 == -0.0). What a signed command's arguments are compared with."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        if len(a) != len(b):
            return False
        for k, v in a.items():
            for k2, v2 in b.items():
                if same(k, k2):
                    if not same(v, v2):
                        return False
                    break
            else:
                return False
        return True
    if type(a) is list or type(a) is tuple:
        if len(a) != len(b):
            return False
        for k in range(len(a)):
            if not same(a[k], b[k]):
                return False
        return True
    if type(a) is float and a == 0.0:
        # 0.0 == -0.0, yet they are two CBOR values: an envelope signed for -0.0 must not authorise 0.0
        return b == 0.0 and str(a) == str(b)
    return a == b
