"""Host extras of smp_dispatch_locked: the seeds and the structure-aware mutator of smp_dispatch_dev (the same
requests: on the locked meter every signed one is refused, its command key being a development key)."""

from meter_fuzz.host.smp_dispatch_dev import mutator, seeds

__all__ = ["mutator", "seeds"]
