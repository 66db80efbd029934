"""The hardware bus between the emulator (host) and the VM's shims (emulator/device/): one JSON object per line,
its kind in "t". This table is the one list of the kinds; the VM's shims use the same strings (they cannot import
host modules) and host_tests/unit/test_protocol.py checks that both sides use only these."""

from __future__ import annotations

TO_DEVICE = {
    "config": "the board, its state and settings, at the VM's 'hello' (answer to it)",
    "query": "ask for a status report (answered by 'status'); reads only; largest_free: true also bisects the heap",
    "hold": "a host is talking on the console: at most 1x, nothing skipped (device time's pacing only)",
    "speed": "device-time speed: a factor or 'max'",
    "run": "`ctl run`: run fast to a world time, then 1x",
    "advance": "`ctl time --advance`: device time moves on by this much",
    "drift": "the RTC crystal's error, ppm",
    "grid": "settings of the grid and load model",
    "scenario": "start or clear a scenario",
    "input": "an input pin's level (button, cover, relay feedback); with for_us and release: a press the VM lets go "
             "after for_us of device time",
    "adc": "a fixed voltage at an ADC pin, or back to the model",
    "cut_at": "cut the power before the n-th flash operation from now",
    "power_cut": "halt now for a precise power cut (reply: 'off')",
    "pending": "input gate: the host has input queued (recorded runs)",
    "resume": "input gate: the hand-over at a point is done",
    "interrupt": "a Ctrl-C came on the console while the interrupt was on: raise it at the next point",
    "modem": "the NB-IoT module: pulled out, put back, wedged, registration denied/allowed, new link parameters",
}

FROM_DEVICE = {
    "hello": "the VM connected (answered by 'config')",
    "booting": "the VM runs the board's boot.py: the console is the firmware's",
    "installed": "first run: the firmware was copied into the flash",
    "formatted": "the filesystem did not mount and was formatted",
    "shim_heap": "what the shims took of their heap share",
    "status": "a status report (answer to 'query')",
    "truth": "the true energy totals (periodic)",
    "grid_state": "the model's settings and scenario progress changed in the VM",
    "pin": "an output pin changed (relay coils)",
    "rtc": "the firmware set the RTC",
    "wdt": "the watchdog was fed: its timeout (the host's backstop)",
    "run_target": "the world time a `ctl run` ends at",
    "arrived": "a `ctl run` reached its end",
    "held": "a press went in: the world time (due_ns) the VM lets it go at, and the level it goes back to",
    "released": "a press was let go (its device time is over)",
    "due": "input gate: the VM is at a point and takes what is queued",
    "interrupted": "the console's Ctrl-C was taken at a point ('raised': false when the firmware had turned it off)",
    "off": "halted for a precise power cut",
    "cut": "halted: a power cut armed at a flash operation, or a scenario's cut",
    "reset": "halted: the firmware reset the board (or the watchdog did)",
    "bootloader": "halted: the RP2040 entered its USB bootloader",
    "end": "halted: the end of `run --for`",
}
