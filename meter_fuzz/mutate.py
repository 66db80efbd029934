"""The built-in engine's byte mutations: seeded, so a run is the same every time. MicroPython-compatible (the VM's
mutation loop uses it too): no bytearray item deletion or resizing slice
assignment (the VM lacks them); the caller's generator only needs randrange(n)."""

INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1F, 0x40, 0x5F, 0x7E, 0x9F, 0xBF, 0xF4,
               0xF5, 0xF6, 0xF7, 0xF9, 0xFA, 0xFB)


def mutate(data, rng, max_size, tokens=(), other=None):
    """One to four stacked mutations of `data`; `rng` has randrange(n) (random.Random, or the VM's shim)."""
    out = bytearray(data)
    for _ in range(1 + rng.randrange(4)):
        op = rng.randrange(9)
        n = len(out)
        if op == 0 and n:  # flip a bit
            i = rng.randrange(n)
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # an interesting byte
            out[rng.randrange(n)] = INTERESTING[rng.randrange(len(INTERESTING))]
        elif op == 2 and n:  # a random byte
            out[rng.randrange(n)] = rng.randrange(256)
        elif op == 3 and n:  # delete a run
            i = rng.randrange(n)
            out = out[:i] + out[i + 1 + rng.randrange(min(16, n - i)):]
        elif op == 4:  # insert random bytes
            i = rng.randrange(n + 1)
            out = out[:i] + bytearray([rng.randrange(256) for _ in range(1 + rng.randrange(8))]) + out[i:]
        elif op == 5 and n:  # duplicate a run
            i = rng.randrange(n)
            j = i + 1 + rng.randrange(min(32, n - i))
            k = rng.randrange(n + 1)
            out = out[:k] + out[i:j] + out[k:]
        elif op == 6 and tokens:  # a dictionary token, inserted or overwriting
            t = tokens[rng.randrange(len(tokens))]
            i = rng.randrange(n + 1)
            out = out[:i] + t + (out[i:] if rng.randrange(2) else out[i + len(t):])
        elif op == 7 and other:  # splice with another corpus input
            i = rng.randrange(n + 1)
            j = rng.randrange(len(other) + 1)
            out = out[:i] + bytearray(other[j:])
        elif op == 8 and n >= 2:  # a length-like field: add or subtract a small number
            i = rng.randrange(n)
            out[i] = (out[i] + (1 + rng.randrange(4)) * (1 if rng.randrange(2) else -1)) & 0xFF
    if len(out) > max_size:
        out = out[:max_size]
    return bytes(out)


def parse_dictionary(text):
    """libFuzzer dictionary lines (`name="\\x01abc"` or `"abc"`, # comments) -> list of bytes."""
    tokens = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or '"' not in line:
            continue
        body = line[line.index('"') + 1:line.rindex('"')]
        out = bytearray()
        i = 0
        while i < len(body):
            c = body[i]
            if c == "\\" and i + 1 < len(body):
                nxt = body[i + 1]
                if nxt == "x" and i + 3 < len(body) + 1:
                    out.append(int(body[i + 2:i + 4], 16))
                    i += 4
                    continue
                out.append(ord(nxt))
                i += 2
                continue
            out.append(ord(c))
            i += 1
        tokens.append(bytes(out))
    return tokens
