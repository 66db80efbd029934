import fwtest
from loader import settings


def test_defaults_when_missing():
    def body():
        conf, problem = settings.load()
        assert conf == settings.DEFAULTS and problem is None
        assert conf["recovery_relay"] == settings.RELAY_DISCONNECT  # recovery never becomes free power

    fwtest.in_workdir(body, "meter")


def test_values_are_taken_and_app_keys_ignored():
    def body():
        fwtest.write(settings.PATH, b'{"recovery_relay": "hold", "recovery_time_limit_s": 120, "tariff": 3}')
        conf, problem = settings.load()
        assert problem is None and conf["recovery_relay"] == "hold" and conf["recovery_time_limit_s"] == 120

    fwtest.in_workdir(body, "meter")


def test_a_bad_file_is_not_half_used():
    def body():
        for raw, why in ((b'{"recovery_relay": "open"}', "bad value for recovery_relay"),
                         (b'{"recovery_relay": "hold", "recovery_time_limit_s": 5}', "bad value for recovery_time_limit_s"),
                         (b"[1]", "not an object"), (b"{oops", "does not parse")):
            fwtest.write(settings.PATH, raw)
            conf, problem = settings.load()
            assert conf == settings.DEFAULTS and problem == why, (raw, problem)

    fwtest.in_workdir(body, "meter")


def test_every_reader_of_the_file_follows_one_rule():
    def body():
        from loader import strict

        defaults = {"n": 5, "t": "a"}
        checks = {"n": lambda v: strict.is_int(v, 1, 9), "t": lambda v: len(v) == 1}
        for raw in (b'{"n": 5.0}', b'{"n": true}', b'{"n": "5"}', b'{"t": 3}', b'{"n": 6, "t": "ab"}'):
            fwtest.write(settings.PATH, raw)
            conf, problem = settings.read(defaults, checks)
            assert conf == defaults and problem.startswith("bad value for "), (raw, conf, problem)
        fwtest.write(settings.PATH, b'{"n": 6, "recovery_relay": "open"}')  # the loader's bad key is its own problem
        assert settings.read(defaults, checks) == ({"n": 6, "t": "a"}, None)
        assert settings.load() == (settings.DEFAULTS, "bad value for recovery_relay")
        fwtest.write(settings.PATH, b'{"recovery_relay": true}')
        assert settings.load() == (settings.DEFAULTS, "bad value for recovery_relay")

    fwtest.in_workdir(body, "meter")
