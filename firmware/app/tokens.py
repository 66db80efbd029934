# Top-up token ids, STS practice: the head-end numbers each meter's tokens (tid 1, 2, 3 ...); the meter accepts any
# unused tid among the WINDOW most recent ones, so two tokens entered out of order both count, and refuses a replay
# or a tid older than the window. The state is two ints persisted with the balance in one record (credit store), so
# a power cut can neither lose a top-up nor let its token be used twice.
from loader import strict

WINDOW = 64
MASK = (1 << WINDOW) - 1

E_BAD_ID = "bad-token-id"
E_REPLAYED = "token-replayed"
E_TOO_OLD = "token-too-old"


class TokenWindow:
    def __init__(self):
        self.top = 0  # the highest tid accepted
        self.used = 0  # bit k set: tid top - k was accepted

    def check(self, tid):
        """None when `tid` may be accepted, else the reason it may not."""
        if not strict.is_int(tid, 1):
            return E_BAD_ID
        if tid > self.top:
            return None
        k = self.top - tid
        if k >= WINDOW:
            return E_TOO_OLD
        return E_REPLAYED if (self.used >> k) & 1 else None

    def mark(self, tid):
        if tid > self.top:
            shift = tid - self.top
            self.used = (self.used << shift) & MASK if shift < WINDOW else 0
            self.top = tid
        self.used |= 1 << (self.top - tid)

    def spend_up_to(self, tid):
        """Every tid up to `tid` counts as spent from now on; the window moves forward only (never back below the
        highest tid accepted, so no spent tid becomes acceptable again)."""
        if tid >= self.top:
            self.top = tid
            self.used = MASK if tid > 0 else 0
        else:
            k = self.top - tid  # bit k stands for tid; bits k and above for the tids below it
            if k < WINDOW:
                self.used |= MASK & ~((1 << k) - 1)

    def record(self):
        return [self.top, self.used]

    def restore(self, rec):
        if type(rec) is not list or len(rec) != 2 or not all(strict.is_int(x, 0) for x in rec):
            raise ValueError("bad token record")
        if rec[0] < 0 or not 0 <= rec[1] <= MASK or (rec[0] == 0) != (rec[1] == 0):
            raise ValueError("bad token record")
        self.top, self.used = rec
