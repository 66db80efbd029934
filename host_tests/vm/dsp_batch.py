# Runs the DSP on waveforms listed in a JSON file (argv[1]) inside the MicroPython VM and prints one JSON line of
# readings per waveform: the same firmware module the CPython property test checks, on the VM's number types.
import json
import sys
import wave

from app import dsp

N = 11 * wave.RATE // 50 + 8
with open(sys.argv[1]) as f:
    cases = json.load(f)
d = dsp.Dsp(wave.RATE, 50.0, 12, N)
out = dsp.Reading()
for c in cases:
    v, i = wave.samples(N, c["volts"], c["amps"], c["phi"], freq=c["freq"], h3=c["h3"], h5i=c["h5i"], t0=c["t0"],
                        noise=c["noise"], seed=c["seed"])
    d.measure(v, i, N, wave.Scale(), out)
    print(json.dumps([out.voltage, out.current, out.p, out.q, out.s, out.pf, out.frequency, out.cycles]))
