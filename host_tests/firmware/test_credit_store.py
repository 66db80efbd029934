import fwtest
from app import credit, credit_store, tokens
from loader import store

KWH = credit.MJ_PER_KWH


def test_topup_and_token_are_one_record():
    def body():
        s = credit_store.CreditStore()
        assert s.load() is None and s.ledger.balance == 0
        assert s.topup(2, 50000) is None and s.topup(1, 20000) is None  # out of order: both count
        assert s.topup(2, 50000) == tokens.E_REPLAYED and s.topup(3, 0) == credit_store.E_AMOUNT
        assert s.topup(3, -5) == credit_store.E_AMOUNT and s.tokens.check(3) is None  # a refusal marks nothing
        t = credit.parse_tariff({"flat": 1000})
        assert s.charge_to(t, 5 * KWH, 1, 0) == 0  # the first reading only sets where charging starts
        assert s.charge_to(t, 7 * KWH, 1, 0) == 2000
        # registers one interval behind after a cut: that energy was paid, nothing is charged twice
        assert s.charge_to(t, 6 * KWH, 1, 0) == 0 and s.charge_to(t, 7 * KWH, 1, 0) == 0
        assert s.charge_to(t, 8 * KWH, 1, 0) == 1000 and s.charge_to(t, 7 * KWH, 1, 0, rebase=True) == 0
        assert s.charge_to(t, 8 * KWH, 1, 0) == 1000
        s.ledger.balance += 2000  # back to the figures below
        s.import_mj = 7 * KWH
        s.save()
        # power cut: the record holds balance, tokens and the register total together
        back = credit_store.CreditStore()
        assert back.load() is None
        assert back.ledger.balance == 68000 and back.import_mj == 7 * KWH and back.topup(1, 20000) == tokens.E_REPLAYED
        # a cut after the top-up's write and before anything else: the top-up is there, its token spent
        assert back.topup(3, 1000) is None
        again = credit_store.CreditStore()
        again.load()
        assert again.ledger.balance == 69000 and again.topup(3, 1000) == tokens.E_REPLAYED

    fwtest.in_workdir(body, "meter")


def test_a_damaged_record_is_refused_whole():
    def body():
        s = credit_store.CreditStore()
        s.topup(1, 1000)
        fwtest.write(credit_store.PATH, b'{"kind": "credit", "v": 1, "data": {"ledger": [1, 2], "tokens": [1, 1], '
                                        b'"import_mj": 0}}')
        back = credit_store.CreditStore()
        assert back.load() == "bad ledger record" and back.ledger.balance == 0 and back.import_mj is None
        assert back.topup(2, 500) == credit_store.E_DAMAGED  # old tokens could be replayed: none until a reset
        back.reset(4200, 1)
        assert back.topup(1, 1000) == tokens.E_REPLAYED and back.topup(2, 500) is None
        assert back.ledger.balance == 4700

    fwtest.in_workdir(body, "meter")


def test_a_day_is_charged_once_however_the_clock_or_calendar_steps():
    def body():
        s = credit_store.CreditStore()
        t = credit.parse_tariff({"flat": 1000, "fixed_daily": 500})
        assert s.new_day(t, 20000, 657) == 0  # the first day only sets the mark
        assert s.new_day(t, 20001, 657) == 500
        # the time zone moved back across midnight (or the clock was set back a day): 20001 was charged already
        assert s.new_day(t, 20000, 657) == 0 and s.new_day(t, 20001, 657) == 0
        assert s.new_day(t, 20002, 657) == 500
        # a clock that ran 3 days ahead, then corrected: the days it charged early are not charged again
        assert s.new_day(t, 20005, 657) == 1500
        assert [s.new_day(t, d, 657) for d in (20003, 20004, 20005, 20006)] == [0, 0, 0, 500]
        # set years ahead by mistake (charged DAYS_MAX days at most), then corrected: charging resumes
        assert s.new_day(t, 21500, 705) == credit_store.DAYS_MAX * 500
        assert s.new_day(t, 20007, 657) == 0 and s.new_day(t, 20008, 657) == 500
        back = credit_store.CreditStore()
        assert back.load() is None and back.day == 20008, "the mark is in the record"

    fwtest.in_workdir(body, "meter")


def test_a_newer_apps_record_is_left_alone_until_a_reset_replaces_it():
    """After a rollback from an app with a newer credit record format, this app refuses top-ups (problem set) and
    never raises at a reading or a save (store.TooNew), leaving the record as it is; the head-end's reset replaces it."""
    def body():
        newer = b'{"kind": "credit", "v": 2, "data": {"ledger": "new"}}'
        fwtest.write(credit_store.PATH, newer)
        s = credit_store.CreditStore()
        assert "newer" in s.load() and s.topup(1, 1000) == credit_store.E_DAMAGED
        t = credit.parse_tariff({"flat": 1000, "fixed_daily": 500})
        assert s.charge_to(t, 5 * KWH, 1, 0) == 0 and s.charge_to(t, 7 * KWH, 1, 0) == 2000
        assert s.new_day(t, 20000, 657) == 0 and s.new_day(t, 20001, 657) == 500
        s.save()
        with open(credit_store.PATH, "rb") as f:
            assert f.read() == newer
        s.reset(4200, 3)
        back = credit_store.CreditStore()
        assert back.load() is None and back.ledger.balance == 4200
        assert back.topup(3, 100) == tokens.E_REPLAYED and back.topup(4, 100) is None
        # torn, and its head names a newer format (not `"data": ]`: MicroPython's json reads that as {"kind", "v"})
        damaged = b'{"kind": "credit", "v": 2, "data": {"led'
        fwtest.write(credit_store.PATH, damaged)
        s = credit_store.CreditStore()
        assert s.load() is not None and s.charge_to(t, 5 * KWH, 1, 0) == 0
        s.save()  # a head alone does not make a newer record (store.write_record): damaged, replaced as any damage
        assert store.read_record(credit_store.PATH, "credit", credit_store.RECORD_VERSION)[0] == \
            credit_store.RECORD_VERSION

    fwtest.in_workdir(body, "meter")
