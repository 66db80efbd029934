"""Prepaid top-up tokens and the credit ledger (app/credit_store.py CreditStore over app/tokens.py TokenWindow and
app/credit.py Ledger, and the signed-token path of app/supply_group.py: loader/commands.py open_token): a sequence of
operations on one meter's credit record. Documented error: Refused (a signed token refused; the probe records it and
goes on). CreditStore's own refusals are return values (a reason string), never exceptions.

Input: a sequence of up to 24 operations, each an opcode byte b (b & 7) and its argument bytes:
    0 topup(tid, amount)      2-byte tid, 4-byte amount; b >> 3 & 3 makes one of them a float, a bool or 2**70
    1 save and reload         a new CreditStore loads the record: the state must come back exactly
    2 damage                  a 1-byte length n, n bytes written over the record, then a reload (problem set or not)
    3 reset(balance, top_tid) 4-byte signed balance, 2-byte top tid (the head-end's signed reset)
    4 charge_to               4-byte register total (kWh/1000 units) on a flat tariff: credit never goes up
    5 new_day                 2-byte day offset: fixed charges never add credit
    6 emergency credit        once until the next top-up
    7 signed token            token number byte 1 of the fixtures' supply tokens, opened by commands.open_token on a
                              locked meter "m-1" whose trust store is trust_supply, then topup(tid, amount) as the
                              supply group does (the first 3 in an input; later ones are skipped)
Invariants: the balance goes up only by an accepted top-up's amount (or the emergency credit, or a reset's balance);
a tid accepted once is refused ever after (unless the record was damaged: the spent window is lost then, as
documented, until a reset); a refused top-up changes nothing; after every write the record reloads to the same
state; a damaged record refuses every top-up; a token the trust store does not sign, a foreign, expired, altered,
wrong-role or wrong-command token is never credited."""

from binascii import unhexlify

import fuzzcore

from app import credit, credit_store, tokens
from loader import commands, mode

ERRORS = (commands.Refused,)
MODULES = ("app/tokens.py", "app/credit_store.py", "app/credit.py")
MEM_BASE = 64 * 1024
MEM_PER_BYTE = 300
EMERGENCY = 3000
TARIFF = credit.parse_tariff({"flat": 1000, "fixed_daily": 50})
TRUST_SUPPLY = unhexlify("a36373696758408ca3d77dfd9ad52dee31c98375580b65376a84a9eb91de21bfc91e52c0ad440b57933b56ff5eb3b05a12cd4011579a23728aed83f393e8323728b1baa9f5f00564626f647958dca3646b65797383a463646576f4636b65795820b533d8ad9fcfbdde0b481c1b334ddc3c53412fd614564e7e5afd020368d382c3646e616d6566726f6f742d6165726f6c65738164726f6f74a463646576f4636b6579582003a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8646e616d656065726f6c65738167636f6d6d616e64a463646576f4636b65795820ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c646e616d656065726f6c65738165696d61676566666f726d61740167636f756e74657202667369676e6572582028274ecb54954b7a493b29b6918cd90dc372300d6007f3a14770f3dc092a670c")
# make_images.supply_envelopes: (name, envelope); only the first five are valid top-ups for m-1
TOKENS = (
    ("token1", unhexlify(
        "a3637369675840690c15ca461d861c5ac5e3d72c02167b0abfab3fdf737974becf29d5da648c50e7a69db04e88e32323144a70b649fdc8"
        "69daf2f71b234f906b4b91b34c1df40964626f64795863a7626964508080808080808080808080808080808063636d646c637265646974"
        "2e746f707570636578701a7735a2106461726773a2637469640166616d6f756e7419271064726f6c6567636f6d6d616e64656d65746572"
        "636d2d3166666f726d617401667369676e65725820a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5"
    )),
    ("token2", unhexlify(
        "a3637369675840c02730b61aee83d42995a71f54cf1ae43587c681cdfe7e41b58d1bd800044ea1145849cb39043e2ebf9bc2127f89c7fa"
        "0f18932c54335673858d722f6898620b64626f64795863a7626964508181818181818181818181818181818163636d646c637265646974"
        "2e746f707570636578701a7735a2106461726773a2637469640266616d6f756e741903e864726f6c6567636f6d6d616e64656d65746572"
        "636d2d3166666f726d617401667369676e65725820a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5"
    )),
    ("token3", unhexlify(
        "a3637369675840e0b185f452dd31ec35ab478db624980b63dc2d706958412ed10669c361acf2f68813aa77096a6dd6e985067b31acda3f"
        "7d3cfe11bdf2e9565deafd573e8edd0d64626f64795863a7626964508282828282828282828282828282828263636d646c637265646974"
        "2e746f707570636578701a7735a2106461726773a2637469640366616d6f756e7419025864726f6c6567636f6d6d616e64656d65746572"
        "636d2d3166666f726d617401667369676e65725820a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5"
    )),
    ("token4", unhexlify(
        "a36373696758403e7a9955576aa41f436c4493ac3bb4796dc1e00e96e2bc5ac811a49d404aacd009825b5827b84e1aa4c2e471175d246f"
        "d8e14e8d22e15f98b337689f42e5500e64626f64795863a7626964508383838383838383838383838383838363636d646c637265646974"
        "2e746f707570636578701a7735a2106461726773a2637469640466616d6f756e741903e864726f6c6567636f6d6d616e64656d65746572"
        "636d2d3166666f726d617401667369676e65725820a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5"
    )),
    ("token70", unhexlify(
        "a3637369675840236f665b1e3d653adb631f647f31ba8e4e6214c182ed6a503c546e406536a0dddd30cb3e02ee19a39ee56147a6f74338"
        "ee24a4199680834323025e7a4423f20b64626f64795864a7626964508484848484848484848484848484848463636d646c637265646974"
        "2e746f707570636578701a7735a2106461726773a263746964184666616d6f756e741901f464726f6c6567636f6d6d616e64656d657465"
        "72636d2d3166666f726d617401667369676e65725820a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5"
    )),
    ("token_foreign", unhexlify(
        "a3637369675840d17e264c21354d963c37d74837219bfab3e08aedb1fb3525e6a12f1c2ba77870559a3c49dbc936acb29eabe6b00f9e6a"
        "e9eaa71812944b3615b5ffccfda2000e64626f64795862a7626964508585858585858585858585858585858563636d646c637265646974"
        "2e746f707570636578701a7735a2106461726773a2637469640566616d6f756e74186464726f6c6567636f6d6d616e64656d6574657263"
        "6d2d3266666f726d617401667369676e65725820a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5"
    )),
    ("token_expired", unhexlify(
        "a3637369675840d97637f9456a1782da06db5b38cb3cb326f2f807cc864edd551aeb8fd944b613f64c41f845f3546ef0706d87bf7c4bba"
        "c15ae316ad26f0754601a06c83fcda0764626f64795862a7626964508686868686868686868686868686868663636d646c637265646974"
        "2e746f707570636578701a6553ff106461726773a2637469640666616d6f756e74186464726f6c6567636f6d6d616e64656d6574657263"
        "6d2d3166666f726d617401667369676e65725820a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5"
    )),
    ("token_wrong_role", unhexlify(
        "a3637369675840c0b0aa51a74a3826915c67cd9f671cfe8c0c46f7eb85852a2118c898ac832f61cb3c40955da7d45e92102a6cf2dcf93d"
        "6b1f3599a7131c3ae563981069dbd00564626f64795862a7626964508787878787878787878787878787878763636d646c637265646974"
        "2e746f707570636578701a7735a2106461726773a2637469640766616d6f756e74186464726f6c6567636f6d6d616e64656d6574657263"
        "6d2d3166666f726d617401667369676e65725820324be2dea8bc44461b0233e51fa48902ed6b1cc671e7739af2551e0bfe68f54e"
    )),
    ("token_stranger", unhexlify(
        "a36373696758406ad22a5337e71a661b5e6c808f4ae52e1c705c52c7a9ff325a6e70f5e3b474b199a6b0cb63d7c2c49d6e94d2b3b72976"
        "97855f65325962f0055a77d3d9e4540664626f64795862a7626964508888888888888888888888888888888863636d646c637265646974"
        "2e746f707570636578701a7735a2106461726773a2637469640866616d6f756e74186464726f6c6567636f6d6d616e64656d6574657263"
        "6d2d3166666f726d617401667369676e657258200f6aa036a50ddceb3e52d13729948a00ccf3a8ca387ae1997deb9dea324e8218"
    )),
    ("token_wrong_cmd", unhexlify(
        "a3637369675840abf8207975ae2cf03fd9a34103aafb3020322724bef036b99d4b166df2101d050e459bc3adb4ca3d46c02ec049b11e4e"
        "a6717d09c0caa6599662a5c2d7808b0b64626f64795866a7626964508989898989898989898989898989898963636d6470637265646974"
        "2e656d657267656e6379636578701a7735a2106461726773a2637469640966616d6f756e74186464726f6c6567636f6d6d616e64656d65"
        "746572636d2d3166666f726d617401667369676e65725820a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791"
        "a5"
    )),
    ("token_altered", unhexlify(
        "a36373696758403e7a9955576aa41f436c4493ac3bb4796dc1e00e96e2bc5ac811a49d404aacd009825b5827b84e1aa4c2e471175d246f"
        "d8e14e8d22e15f98b337689f42e5500e64626f64795865a7626964508383838383838383838383838383838363636d646c637265646974"
        "2e746f707570636578701a7735a2106461726773a2637469640466616d6f756e741a000186a064726f6c6567636f6d6d616e64656d6574"
        "6572636d2d3166666f726d617401667369676e65725820a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5"
    )),
)
OPS_MAX = 24  # operations per input (each write is a file replaced and read back: long inputs would only be slow)
TOKENS_MAX = 3  # signed tokens opened per input (two signature checks each: the rest of an input stays fast)
VALID = ("token1", "token2", "token3", "token4", "token70")


class Ctx:
    meter_id = "m-1"
    mode = mode.LOCKED


def _int(b, signed=False):
    return int.from_bytes(b, "big") - ((1 << (8 * len(b) - 1)) * 2 if signed and b and b[0] & 0x80 else 0)


def _state(cs):
    return (cs.ledger.record(), cs.tokens.record(), cs.import_mj, cs.day, cs.month)


def _reloaded(cs):
    if cs.newer:
        return  # a newer app's record is left as it is (the store writes nothing until a reset)
    back = credit_store.CreditStore()
    fuzzcore.check(back.load() is None, "the record just written does not reload: %s" % back.problem)
    fuzzcore.check(_state(back) == _state(cs), "the record reloads to another state")


def _odd(v, kind):
    return (v, float(v), True, 2 ** 70)[kind]


class Run:
    def __init__(self):
        self.cs = credit_store.CreditStore()
        self.cs.load()
        self.applied = set()
        self.damaged = False
        self.refused = []
        self.trust_written = False
        self.tokens_opened = 0

    def topup(self, tid, amount):
        cs = self.cs
        before = cs.ledger.balance
        why = cs.topup(tid, amount)
        if why is None:
            fuzzcore.check(self.damaged is False or cs.problem is None, "a top-up applied to a damaged record")
            fuzzcore.check(tid not in self.applied, "token %r applied twice" % (tid,))
            fuzzcore.check(cs.ledger.balance == before + amount, "the balance moved by another amount than the token's")
            self.applied.add(tid)
            _reloaded(cs)
        else:
            fuzzcore.check(cs.ledger.balance == before, "a refused top-up changed the balance")
            if cs.problem is not None:
                fuzzcore.check(why == credit_store.E_DAMAGED, "a damaged record refused a top-up for %s" % why)
        return why

    def signed(self, k):
        self.tokens_opened += 1
        if self.tokens_opened > TOKENS_MAX:
            return
        name, raw = TOKENS[k % len(TOKENS)]
        if not self.trust_written:
            with open("meter/trust.cbor", "wb") as f:
                f.write(TRUST_SUPPLY)
            self.trust_written = True
        try:
            body = commands.open_token(Ctx(), raw, "credit.topup")
        except commands.Refused as e:
            self.refused.append(e.reason)
            return
        fuzzcore.check(name in VALID, "token %s opened: it is not a valid top-up for this meter" % name)
        args = body.get("args", {})
        self.topup(args.get("tid"), args.get("amount"))

    def op(self, b, arg):
        cs = self.cs
        code = b & 7
        before = cs.ledger.balance
        if code == 0:
            self.topup(_odd(_int(arg[:2]), b >> 3 & 3 if b & 0x20 == 0 else 0),
                       _odd(_int(arg[2:6]), b >> 3 & 3 if b & 0x20 else 0))
        elif code == 1:
            cs.save()  # as the register save does (charges between are kept in RAM, by design)
            back = credit_store.CreditStore()
            problem = back.load()
            if not self.damaged or cs.problem is None and not cs.newer:
                fuzzcore.check(problem is None and _state(back) == _state(cs), "the record does not reload")
            self.cs = back
        elif code == 2:
            with open(credit_store.PATH, "wb") as f:
                f.write(arg)
            back = credit_store.CreditStore()
            back.load()
            self.cs = back
            self.damaged = True
            self.applied = set()  # the spent-token window came from the damaged record (documented: reset)
        elif code == 3:
            top = _int(arg[4:6])
            cs.reset(_int(arg[:4], True), top)
            for t in self.applied:
                fuzzcore.check(cs.tokens.check(t) is not None, "tid %d is acceptable again after a reset" % t)
            for t in (top, top - 1, top - tokens.WINDOW + 1, top - tokens.WINDOW, 1):
                if 1 <= t <= top:
                    fuzzcore.check(cs.tokens.check(t) is not None, "tid %d up to the reset's top tid is acceptable" % t)
            _reloaded(cs)
        elif code == 4:
            cs.charge_to(TARIFF, _int(arg[:4]) * 3600000, 1, 1800000000)
            fuzzcore.check(cs.ledger.balance <= before, "charging energy added credit")
        elif code == 5:
            cs.new_day(TARIFF, 20000 + _int(arg[:2]), 657 + _int(arg[:2]) // 30)
            fuzzcore.check(cs.ledger.balance <= before, "a new day added credit")
        elif code == 6:
            had = cs.ledger.emergency
            if cs.ledger.take_emergency(EMERGENCY):
                fuzzcore.check(not had and cs.ledger.balance == before + EMERGENCY, "emergency credit twice")
                cs.save()
                _reloaded(cs)
            else:
                fuzzcore.check(cs.ledger.balance == before, "a refused emergency credit changed the balance")
        else:
            self.signed(arg[0] if arg else 0)


ARGS = (6, 0, None, 6, 4, 2, 0, 1)


def run(data):
    fuzzcore.scratch("topup_token")
    import os

    os.mkdir("meter")
    r = Run()
    p = 0
    ops = 0
    while p < len(data) and ops < OPS_MAX:
        ops += 1
        b = data[p]
        n = ARGS[b & 7]
        if n is None:
            n = data[p + 1] if p + 1 < len(data) else 0
            p += 1
        r.op(b, bytes(data[p + 1:p + 1 + n]))
        p += 1 + n
    return {"balance": r.cs.ledger.balance, "refused": r.refused}
