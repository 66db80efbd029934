# IS 15959-2's alert push setup (0.4.25.9.0.255, class 40, version 0; docs/dlms.md "Alert push"), read-only, as
# app/dlms_objects.py serves it on a meter that pushes (app/network_link.py alert): the values each alert carries, the
# destination (the head-end's address and DLMS port), the retries. On the heap for that object's read only.
from micropython import const

from app import cosem
from app.dlms_names import CLOCK, PLATE_ITEMS, PUSH_SETUP

_CLASS_DATA = const(1)  # (private consts, as in app/dlms_objects.py: no names on the heap)
_CLASS_CLOCK = const(8)
_CLASS_PUSH = const(40)
_UDP = const(1)  # send_destination_and_method's transport service (0 TCP, 1 UDP)
# the values each alert carries, {class, logical name, attribute}: the device id (the name plate's: FLAG and the meter
# id), the push setup's name, the clock's time, IS 15959's Event Status Word (sent in pushes only)
_PUSHED = ((_CLASS_DATA, PLATE_ITEMS[1], 2), (_CLASS_PUSH, PUSH_SETUP, 1), (_CLASS_CLOCK, CLOCK, 2),
           (_CLASS_DATA, b"\x00\x00\x5e\x5b\x12\xff", 2))


def get(push, attr):
    """The alert push setup's attribute `attr` (class 40, version 0; 1, its name, is app/dlms_objects.py's); `push`
    the meter's (head-end {ip, dlms_port, ...}, number of retries, repetition delay in s), app/network_link.py's."""
    headend, retries, delay_s = push
    if attr == 2:  # push_object_list: {class, logical name, attribute, data index} per value pushed
        return cosem.array(len(_PUSHED), b"".join(cosem.structure(
            cosem.number(cosem.LONG_UNSIGNED, c), cosem.octets(n), cosem.number(cosem.INTEGER, a),
            cosem.number(cosem.LONG_UNSIGNED, 0)) for c, n, a in _PUSHED))
    if attr == 3:  # send_destination_and_method: UDP, "ip:port", A-XDR encoded xDLMS APDUs (message 0)
        to = ("%s:%d" % (headend["ip"], headend["dlms_port"])).encode()
        return cosem.structure(cosem.number(cosem.ENUM, _UDP), cosem.octets(to), cosem.number(cosem.ENUM, 0))
    if attr == 4:  # communication_window: none, an alert goes when it comes
        return cosem.array(0, b"")
    if attr == 5:  # randomisation_start_interval: none
        return cosem.number(cosem.LONG_UNSIGNED, 0)
    if attr == 6:  # number_of_retries (of a push the module refused)
        return cosem.number(cosem.UNSIGNED, retries)
    if attr == 7:  # repetition_delay, s
        return cosem.number(cosem.LONG_UNSIGNED, delay_s)
    return cosem.READ_WRITE_DENIED
