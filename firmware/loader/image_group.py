# SMP image management group (1) and the update-status command of our own group (64): upload into a staging file
# with resume, verification of a completed upload against the signed-image policy (after the reply has gone out,
# so no client times out waiting), state read, state write (install at next boot, confirm) and erase of the staged
# upload. On a locked meter, state write and erase need a signed command envelope; upload stays open (the image
# authenticates itself). Lives in the loader so recovery mode serves it too.
# The two reads keep their last reply encoded and answer with it while nothing it shows has changed: after hours of
# metering the heap is in small pieces, and a read must not need a large one (docs/smp-groups.md).
import os

from micropython import const

import cbor

# What verification needs (image, and trust with ed25519 and sha512) is loaded with the group, at boot, while the heap
# is in one piece: after hours of metering the free heap is plenty but in small pieces, and loading a module's
# bytecode needs larger ones. The bundle inside (loader/bundle.py: inflate, manifest, file hashes) is checked by the
# install at the next boot, not here: see _verify.
from loader import LOADER_API, commands, image, mode, slots, smp, staging, store, strict, trust, update
from loader.staging import MAX_COUNTER_STEP, STAGING

CMD_STATE = const(0)
CMD_UPLOAD = const(1)
_CMD_ERASE = const(5)
GROUP_METER = const(64)
CMD_UPDATE_STATUS = const(0)

# update states reported by the update-status command
ST_NONE = "none"
ST_RECEIVING = "receiving"
ST_VERIFYING = "verifying"
ST_ACCEPTED = "accepted"
ST_REJECTED = "rejected"
# command names in the signed envelopes a locked meter needs (docs/smp-groups.md)
CMD_NAME_STATE = "image.state"
CMD_NAME_ERASE = "image.erase"


def version_text(v):
    """MCUmgr's form: major.minor.revision, plus .build when it is not 0 ("0.0.0" for a damaged one)."""
    if type(v) is not str:
        return "0.0.0"
    base, _, build = v.partition("+")
    return base if build in ("", "0") else base + "." + build


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return 0


def _hex(s, n):
    """s is the hex text of n bytes."""
    if type(s) is not str or len(s) != 2 * n:
        return False
    try:
        bytes.fromhex(s)
    except ValueError:
        return False
    return True


class ImageGroup:
    """`ctx` supplies board, mode, app_version, manifest and the SMP server (for after_reply)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.budget = staging.slot_budget(ctx.board)
        rec = None
        try:
            rec = store.read_json(staging.UPLOAD_REC)
        except ValueError:
            pass
        self.rec = rec if isinstance(rec, dict) and strict.is_int(rec.get("len"), 0) and (
            rec.get("sha") is None or _hex(rec["sha"], 32)) else None
        self.state = ST_RECEIVING if self.rec else ST_NONE
        self.reason = ""
        self.staged = None
        # slot name -> (version, hash, bootable), for every image state read: the loader's (loader/update.py
        # slots_facts, before the app's imports), else worked out here (test harnesses; recovery mode has no slot)
        facts = ctx.facts
        if facts is None and ctx.slot is not None:
            facts = update.slots_facts(ctx.slot, None)
        self._facts = facts or {}
        self._other = None  # the other slot, when it holds a manifest
        for name in self._facts:
            if name != ctx.slot:
                self._other = name
        self.keys, self.keys_dev = _image_keys()
        self._seen = None  # update.changes when the records below were read (see _fresh)
        self._replies = [None, None, None, None]  # key, encoded state read; key, encoded update status
        try:
            boots = store.read_json("meter/boots.json", {})
        except ValueError:
            boots = {}
        self.boot = boots.get("boots", 0) if isinstance(boots, dict) and strict.is_int(boots.get("boots"), 0) else 0  # tells a client the meter rebooted
        if self.rec and _size(STAGING) == self.rec["len"]:
            self.verify_staged()  # a complete upload survived a reset: judge it again, nothing is trusted from before
        self._prebuild()  # while the heap is whole

    def register(self, server):
        server.register(smp.GROUP_IMAGE, CMD_STATE, self._state_reply, write=False)
        server.register(smp.GROUP_IMAGE, CMD_STATE, self.state_write, read=False)
        server.register(smp.GROUP_IMAGE, CMD_UPLOAD, self.upload, read=False)
        server.register(smp.GROUP_IMAGE, _CMD_ERASE, self.erase, read=False)
        server.register(GROUP_METER, CMD_UPDATE_STATUS, self._status_reply, write=False)

    # -- the reads' replies ----------------------------------------------------------------------------------------
    def _fresh(self):
        """Read again what this boot may change behind the group's back (an install request, a confirmation by the
        app's self-test, a failed test boot): only after such a change, never at every read."""
        if self._seen == update.changes:
            return
        st = slots.read_state()
        self.counter = staging.stored_counter()
        self.other_confirmed = self._other is not None and st["confirmed"] == self._other
        self.pending = update.pending()
        self.trial = None if self.pending else update.trial(st)  # a new request: its test boot is yet to come
        self._seen = update.changes

    def _prebuild(self):
        try:
            self._state_reply({})
            self._status_reply({})
        except MemoryError:
            pass  # encoded at the next read

    def _reply(self, i, key, build):
        r = self._replies
        if r[i] != key:
            r[i + 1] = None  # the old reply's room first
            r[i + 1] = cbor.dumps(build({}))
            r[i] = key
        return r[i + 1]

    def _state_reply(self, req):
        self._fresh()
        return self._reply(0, (self.state, self.staged, self.ctx.test_boot, self._seen), self.state_read)

    def _status_reply(self, req):
        self._fresh()
        return self._reply(2, (self.state, self.reason, self.ctx.refused, _size(STAGING), self.rec and self.rec["len"],
                               self.staged, self._seen), self.update_status)

    # -- upload ------------------------------------------------------------------------------------------------
    def _start(self, length, sha, first):
        if not strict.is_int(length, image.HEADER_SIZE + 1):
            raise smp.SmpError(smp.EINVAL)
        if length > self.budget + image.HEADER_SIZE + image.PROTECTED_MAX + image.UNPROTECTED_MAX:
            self._reject(image.R_OVERSIZE)
            raise smp.SmpError(smp.ENOMEM)
        if len(first) >= image.HEADER_SIZE:
            try:
                image.check_header(first[:image.HEADER_SIZE], length, self.budget)
            except image.Rejected as e:
                self._reject(e.reason)
                raise smp.SmpError(smp.EINVAL) from None
        self._clear()
        self.rec = {"len": length, "sha": sha.hex() if sha else None}
        store.write_json(staging.UPLOAD_REC, self.rec)
        self.state = ST_RECEIVING
        self.reason = ""

    def upload(self, req):
        off = req.get("off")
        data = req.get("data")
        if not strict.is_int(off, 0) or not isinstance(data, bytes) or not strict.same(req.get("image", 0), 0):
            raise smp.SmpError(smp.EINVAL)
        if off == 0:
            import gc

            gc.collect()  # a first chunk: what earlier requests left behind is collected while the heap is in pieces
            length = req.get("len")
            sha = req.get("sha")
            if sha is not None and (not isinstance(sha, bytes) or len(sha) != 32):
                raise smp.SmpError(smp.EINVAL)
            have = _size(STAGING)
            rec = self.rec
            if rec and sha and rec.get("sha") == sha.hex() and rec.get("len") == length and 0 < have <= length:
                # The first chunk of the upload we hold (same sha and len) sent again: a duplicate datagram, a late
                # retransmission, or a client resuming after link loss or a reset. Never a restart: the answer is
                # where the upload stands (all of it once complete, and a verified upload is kept); to send the same
                # image again from the start, erase first. A complete upload not accepted (its verification ran out
                # of memory) is judged again after this reply. (Inline, not a method: issue 19's heap.)
                if have < length:
                    self.state = ST_RECEIVING  # a refused attempt at another upload may have said rejected meanwhile
                    self.reason = ""
                elif self.state != ST_ACCEPTED:
                    self.state = ST_VERIFYING
                    self.reason = ""
                    self.ctx.server.after_reply = self.verify_staged
                return {"off": have}
            self._start(length, sha, data)
        if self.rec is None:
            raise smp.SmpError(smp.EBADSTATE)
        expected = _size(STAGING)
        length = self.rec["len"]
        if off != expected or expected >= length:  # out of order, or past a complete upload: nothing is written
            return {"off": expected}
        if expected + len(data) > length:
            raise smp.SmpError(smp.EINVAL)
        with open(STAGING, "ab") as f:
            f.write(data)
        new = expected + len(data)
        rsp = {"off": new}
        if new == length:
            if self.rec.get("sha"):
                rsp["match"] = self._file_sha() == bytes.fromhex(self.rec["sha"])
            self.state = ST_VERIFYING
            self.ctx.server.after_reply = self.verify_staged
        return rsp

    def _file_sha(self):
        return slots.file_sha256(STAGING)

    def verify_staged(self):
        """Check the complete upload with the signed-image policy; a rejected upload is deleted. The reads' replies
        are encoded again at once, as verification's garbage is collected (the host reads them next)."""
        import gc

        gc.collect()  # the garbage of the upload's chunks, before the verifier's own
        self._verify()
        gc.collect()
        self._prebuild()

    def _verify(self):
        # The signed-image policy: header, the streamed SHA-256, key, Ed25519 signature, board, loader API, counter,
        # budget. The bundle the signature covers (manifest, paths, file hashes) is checked by the install at the next
        # boot, on a heap in one piece, as it unpacks into the inactive slot: its inflate window and manifest needed
        # 9.7 KB held from boot here (issue 17). Only a broken builder signs a bad bundle; `ota push` and `ota verify`
        # run the same bundle check on the host first, and an install that refuses one leaves the running app.
        for again in (True, False):
            try:
                info = staging.check_staged(self.ctx.board)
                break
            except image.Rejected as e:
                self._reject(e.reason)
                self._clear()
                return
            except MemoryError:  # noqa: B014
                pass
            if not again:
                # not the image's fault: keep the upload, report, and let a reset (fresh heap) judge it again
                self.state = ST_REJECTED
                self.reason = "out-of-memory"
                return
            # The check changes nothing: once more, with what the releasers give back (a DLMS session's layers) and
            # what the failed attempt left collected (the verifier's modules it imported stay: less to find now).
            self.ctx.server.make_room()
            import gc

            gc.collect()
        self.staged = {"version": info["version"], "hash": info["sha256"], "counter": info["counter"]}
        self.state = ST_ACCEPTED

    def _reject(self, reason):
        self.state = ST_REJECTED
        self.reason = reason
        print("update: upload rejected: %s" % reason)

    def _clear(self):
        staging.discard()
        self.rec = None
        self.staged = None

    # -- state ---------------------------------------------------------------------------------------------------
    def _slot_entry(self, slot_no, name, active, confirmed):
        # the facts were worked out once per boot: the slots change only at boot (the loader's install), and reading
        # a manifest whole later, on a heap in small pieces after hours of metering, could fail where an image state
        # read must not (it answered ENOMEM on the ESP32)
        version, h, bootable = self._facts[name]
        return {"slot": slot_no, "version": version_text(version), "hash": h, "bootable": bootable, "pending": False,
                "confirmed": confirmed, "active": active, "permanent": False}

    def state_read(self, req):
        self._fresh()
        images = []
        if self.ctx.slot is not None:
            images.append(self._slot_entry(0, self.ctx.slot, True, not self.ctx.test_boot))
        req_ = self.pending
        if self.state == ST_ACCEPTED and self.staged:
            images.append({"slot": 1, "version": version_text(self.staged["version"]), "hash": self.staged["hash"],
                           "bootable": True, "pending": req_ is not None, "confirmed": False, "active": False,
                           "permanent": bool(req_ and req_.get("permanent"))})
        elif self._other is not None:
            images.append(self._slot_entry(1, self._other, False, self.other_confirmed))
        return {"images": images}

    def state_write(self, req):
        """{hash, confirm}: with the hash of a verified upload, install it at the next boot (as a test, or for good
        with confirm); with confirm and no hash (or the running image's), confirm the running test boot."""
        h = req.get("hash")
        confirm = req.get("confirm", False)
        if (h is not None and not isinstance(h, bytes)) or not isinstance(confirm, bool):
            raise smp.SmpError(smp.EINVAL)
        args = {"confirm": confirm}  # type: dict[str, object]
        if h is not None:
            args["hash"] = h
        self._authorise(req, CMD_NAME_STATE, args)
        if h is not None and self.state == ST_ACCEPTED and self.staged and h == self.staged["hash"]:
            update.request(h, confirm)
            return self.state_read({})
        if self.ctx.slot is not None and (h is None or h == self._facts[self.ctx.slot][1]):
            if not confirm:
                raise smp.SmpError(smp.EINVAL)
            if self.ctx.test_boot:
                update.confirm(self.ctx.slot)
                self.ctx.test_boot = False
            return self.state_read({})
        raise smp.SmpError(smp.ENOENT)

    def erase(self, req):
        slot = req.get("slot", 1)
        if not strict.is_int(slot):
            raise smp.SmpError(smp.EINVAL)
        self._authorise(req, CMD_NAME_ERASE, {"slot": slot})
        if slot != 1:
            raise smp.SmpError(smp.EBADSTATE)  # never the running slot
        self._clear()
        self.state = ST_NONE
        self.reason = ""
        return {}

    def _authorise(self, req, name, args):
        """Locked meters change state only for a signed command envelope naming exactly this request."""
        if self.ctx.mode == mode.DEVELOPMENT:
            return
        try:
            commands.authorise(self.ctx, req, name, args)
        except commands.Refused as e:
            self.ctx.refused = e.reason
            raise smp.SmpError(smp.EACCESSDENIED) from None
        self.ctx.refused = ""

    def update_status(self, req):
        """What a host needs to judge an image before sending it (mode, counter, loader API, budget, keys) and how the
        latest test boot ended (trial); docs/smp-groups.md."""
        self._fresh()
        out = {"state": self.state, "reason": self.reason, "received": _size(STAGING),
               "length": self.rec["len"] if self.rec else 0, "refused": self.ctx.refused, "boot": self.boot,
               "mode": self.ctx.mode, "counter": self.counter, "max_step": MAX_COUNTER_STEP, "loader_api": LOADER_API,
               "budget": self.budget, "image_keys": self.keys, "image_keys_dev": self.keys_dev}
        if self.staged:
            out["image_version"] = self.staged["version"]
            out["hash"] = self.staged["hash"]
        if self.trial:
            out["trial"] = self.trial
        return out


def _image_keys():
    """(first 8 bytes of each image-role key's keyhash, whether each is a development key) as the trust store lists
    them. Its root signature is not checked here (a check costs a signature verification and the verifier's tables
    on every boot): a store that fails it trusts nothing, and the meter then rejects every image (unknown-key)."""
    keys = []
    dev = []
    raw = store.read_bytes(trust.PATH)
    try:
        for k in trust.parse(raw)[0]["keys"] if raw else ():
            if image.ROLE_IMAGE in k["roles"]:
                keys.append(image.keyhash(k["key"])[:8])
                dev.append(k.get("dev") is True)
    except trust.TrustError:
        pass
    return keys, dev
