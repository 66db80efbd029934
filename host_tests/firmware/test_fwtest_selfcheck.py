import fwtest


def test_raises_returns_the_exception():
    e = fwtest.raises(ValueError, int, "x")
    assert isinstance(e, ValueError)


def test_raises_fails_when_nothing_is_raised():
    try:
        fwtest.raises(ValueError, int, "1")
    except AssertionError:
        return
    raise AssertionError("raises() accepted a call that raised nothing")


def test_float32_rounds():
    assert fwtest.float32(16777217.0) == 16777216.0
