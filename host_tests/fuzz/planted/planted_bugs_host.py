"""The planted target's differential: it "disagrees with its reference" on inputs starting with b"differ:"."""


def differential(data, result):
    import fuzzcore

    if data.startswith(b"differ:"):
        raise fuzzcore.Violation("the reference decoder disagrees")
