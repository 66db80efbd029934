"""Host-side code shared by the `ota` tool and the `meter-emu` emulator: board definitions, the meter's filesystem
layout and the slot manifest."""
