"""The harness inside the sanitized worker: plain Python values in, the C core called through cffi, plain values out.

Every buffer handed to C is malloc'ed at its exact size (ASan puts a redzone right after it), so a write one byte
past an output buffer or a read one byte past an input ends the worker with ASan's report.
"""

from __future__ import annotations

from itertools import count
from typing import Any

from _wedge_host import ffi, lib  # type: ignore[import-not-found]

ERRORS = {name: int(getattr(lib, name)) for name in (
    "WEDGE_OK", "WEDGE_ERR_INVAL", "WEDGE_ERR_NOSPC", "WEDGE_ERR_MALFORMED", "WEDGE_ERR_VERSION",
    "WEDGE_ERR_UNSUPPORTED", "WEDGE_ERR_RANGE", "WEDGE_ERR_NOTFOUND", "WEDGE_ERR_IO", "WEDGE_ERR_STATE")}
ERROR_NAMES = {value: name for name, value in ERRORS.items()}


def _alloc(size: int, ctype: str = "uint8_t *") -> Any:
    pointer = lib.malloc(size)
    if pointer == ffi.NULL:
        raise MemoryError(size)
    return ffi.gc(ffi.cast(ctype, pointer), lib.free)


def _copy(data: bytes) -> Any:
    """`data` in a malloc'ed buffer of exactly its size."""
    buf = _alloc(len(data))
    if data:
        ffi.memmove(buf, data, len(data))
    return buf


def _text(s: Any) -> str:
    """A wedge_str_t as Python text."""
    return bytes(ffi.buffer(s.ptr, s.len)).decode("utf-8")


class _Strings:
    """wedge_str_t values whose bytes live as long as this object."""

    def __init__(self) -> None:
        self._keep: list[Any] = []

    def make(self, value: str | None) -> Any:
        s = ffi.new("wedge_str_t *")
        if value is not None:
            data = value.encode("utf-8")
            buf = _copy(data)
            self._keep.append(buf)
            s.ptr = ffi.cast("const char *", buf)
            s.len = len(data)
        return s[0]

    def bytes_(self, value: bytes | None) -> Any:
        if value is None:
            return ffi.NULL
        buf = _copy(value)
        self._keep.append(buf)
        return buf

    def keep(self, obj: Any) -> Any:
        self._keep.append(obj)
        return obj


class _Host:
    """A host port and fake runtime, with their buffers."""

    def __init__(self, uart_cap: int = 1 << 16, notify_cap: int = 1 << 18) -> None:
        self.uart = _alloc(uart_cap)
        self.notify = _alloc(notify_cap)
        self.port = ffi.new("host_port_t *")
        lib.host_port_init(self.port, self.uart, uart_cap, self.notify, notify_cap)
        self.runtime: Any = None
        self.ops: Any = None
        self.reason: Any = None

    def take_uart(self) -> bytes:
        data = bytes(ffi.buffer(self.uart, self.port.uart_len))
        self.port.uart_len = 0
        return data

    def take_notifications(self) -> list[bytes]:
        raw = bytes(ffi.buffer(self.notify, self.port.notify_len))
        self.port.notify_len = 0
        frames, at = [], 0
        while at < len(raw):
            size = raw[at] | raw[at + 1] << 8
            frames.append(raw[at + 2: at + 2 + size])
            at += 2 + size
        return frames

    def make_runtime(self, arena_bytes: int, input_bytes: int = 0, output_count: int = 0,
                     ops: tuple[str, ...] = (), self_test_rc: int = 0, self_test_reason: str | None = None,
                     fail_infer_after: int = -1) -> Any:
        self.ops = ffi.new("char[]", "\n".join(ops).encode())
        self.runtime = ffi.new("host_runtime_t *")
        lib.host_runtime_init(self.runtime, arena_bytes, input_bytes, output_count, self.ops)
        self.runtime.self_test_rc = self_test_rc
        if self_test_reason is not None:
            self.reason = ffi.new("char[]", self_test_reason.encode())
            self.runtime.self_test_reason = self.reason
        self.runtime.fail_infer_after = fail_infer_after
        return self.runtime


class _Flash:
    def __init__(self, size_bytes: int, erase_bytes: int = 4096, write_bytes: int = 4,
                 content: bytes = b"") -> None:
        self.mem = _alloc(size_bytes)
        ffi.memmove(self.mem, b"\xff" * size_bytes, size_bytes)
        if content:
            ffi.memmove(self.mem, content[:size_bytes], min(len(content), size_bytes))
        self.host = ffi.new("host_flash_t *")
        lib.host_flash_init(self.host, self.mem, size_bytes, erase_bytes, write_bytes)

    def contents(self) -> bytes:
        return bytes(ffi.buffer(self.mem, self.host.size_bytes))


def _tensor(t: Any) -> dict[str, Any]:
    return {
        "name": _text(t.name), "dtype": _text(t.dtype), "shape": [t.shape[i] for i in range(t.n_dims)],
        "n_scales": t.n_scales, "n_zero_points": t.n_zero_points,
        "scales": [t.scales[i] for i in range(min(t.n_scales, len(t.scales)))],
        "zero_points": [t.zero_points[i] for i in range(min(t.n_zero_points, len(t.zero_points)))],
        "axis": t.axis,
    }


def _manifest(m: Any) -> dict[str, Any]:
    return {
        "format": m.format, "image": m.image, "model_name": _text(m.model_name),
        "model_version": _text(m.model_version), "board": _text(m.board), "runtime": _text(m.runtime),
        "inputs": [_tensor(m.inputs[i]) for i in range(m.n_inputs)],
        "outputs": [_tensor(m.outputs[i]) for i in range(m.n_outputs)],
        "n_labels": m.n_labels, "arena_bytes": m.arena_bytes, "model_bytes": m.model_bytes,
        "model_sha256": bytes(ffi.buffer(m.model_sha256, 32)), "signer_key": bytes(ffi.buffer(m.signer_key, 32)),
        "ops": [_text(m.ops[i]) for i in range(m.n_ops)] if m.has_ops else None,
    }


class HostApi:
    """What the tests call (through tests.device_c.core.Core)."""

    def __init__(self) -> None:
        self._sessions: dict[int, Any] = {}
        self._ids = count(1)

    def errors(self) -> dict[str, int]:
        return dict(ERRORS)

    # -- Heart Rate Measurement -------------------------------------------------------------------------------

    def hr_encode(self, bpm: int, contact: bool | None, energy_kj: int | None, rr: list[int],
                  cap: int) -> tuple[int, bytes, int]:
        hr = ffi.new("wedge_hr_t *")
        hr.bpm = bpm
        hr.contact = {None: lib.WEDGE_HR_CONTACT_UNSUPPORTED, False: lib.WEDGE_HR_CONTACT_NONE,
                      True: lib.WEDGE_HR_CONTACT_DETECTED}[contact]
        hr.has_energy = energy_kj is not None
        hr.energy_kj = energy_kj or 0
        rr_buf = _alloc(2 * len(rr), "uint16_t *")
        for i, value in enumerate(rr):
            rr_buf[i] = value
        hr.rr_1024 = rr_buf
        hr.rr_count = len(rr)
        out = _alloc(cap)
        length = ffi.new("size_t *")
        sent = ffi.new("size_t *")
        rc = lib.wedge_hr_encode(hr, out, cap, length, sent)
        return rc, bytes(ffi.buffer(out, length[0])) if rc == 0 else b"", sent[0]

    def rr_units(self, rr_us: int) -> int:
        return int(lib.wedge_hr_rr_units(rr_us))

    # -- manifest and image -----------------------------------------------------------------------------------

    def manifest_read(self, data: bytes) -> tuple[int, str, dict[str, Any] | None]:
        buf = _copy(data)
        manifest = ffi.new("wedge_manifest_t *")
        bad = ffi.new("wedge_manifest_field_t *")
        rc = lib.wedge_manifest_read(buf, len(data), manifest, bad)
        field = ffi.string(lib.wedge_manifest_field_name(bad[0])).decode()
        return rc, field, _manifest(manifest) if rc == 0 else None

    def image_read(self, content: bytes, slot_bytes: int) -> tuple[int, dict[str, Any] | None]:
        flash = _Flash(slot_bytes, content=content)
        info = ffi.new("wedge_image_info_t *")
        rc = lib.wedge_image_read(ffi.addressof(flash.host, "flash"), info)
        if rc != 0:
            return rc, None
        offset = ffi.new("uint32_t *")
        length = ffi.new("uint32_t *")
        found = lib.wedge_image_find_tlv(ffi.addressof(flash.host, "flash"), info, True, 0xA5, offset, length)
        result = {name: getattr(info, name) for name in (
            "header_bytes", "body_bytes", "flags", "version_major", "version_minor", "version_revision",
            "version_build", "protected_bytes", "tlv_bytes", "total_bytes", "has_sha256")}
        result["sha256"] = bytes(info.sha256) if info.has_sha256 else None
        result["manifest"] = content[offset[0]: offset[0] + length[0]] if found == 0 else None
        return rc, result

    # -- SMP group --------------------------------------------------------------------------------------------

    def _board_info(self, keep: _Strings, info: dict[str, Any]) -> Any:
        c = keep.keep(ffi.new("wedge_board_info_t *"))
        for name in ("board", "runtime", "firmware"):
            setattr(c, name, keep.make(info[name]))
        c.model_slot_bytes = info["model_slot_bytes"]
        c.arena_bytes = info["arena_bytes"]
        c.key_hash = keep.bytes_(info["key_hash"])
        d = info.get("descriptor")
        if d is not None:
            cd = keep.keep(ffi.new("wedge_fw_descriptor_t *"))
            for name in ("name", "version", "board", "tflm_version"):
                setattr(cd, name, keep.make(d[name]))
            cd.arena_bytes = d["arena_bytes"]
            cd.stream_protocol = d["stream_protocol"]
            cd.model_image = d["model_image"]
            cd.ops_bitmap = keep.bytes_(d["ops_bitmap"])
            cd.ops_bitmap_bytes = len(d["ops_bitmap"])
            c.descriptor = cd
        return c

    def _model_status(self, keep: _Strings, status: dict[str, Any]) -> Any:
        c = keep.keep(ffi.new("wedge_model_status_t *"))
        c.state = status["state"]
        c.boot_count = status["boot_count"]
        c.model_name = keep.make(status.get("model_name"))
        c.model_version = keep.make(status.get("model_version"))
        c.event = keep.make(status.get("event"))
        c.model_hash = keep.bytes_(status.get("model_hash"))
        if status.get("arena_used_bytes") is not None:
            c.has_arena_used = True
            c.arena_used_bytes = status["arena_used_bytes"]
        if status.get("self_test_us") is not None:
            c.has_self_test_us = True
            c.self_test_us = status["self_test_us"]
        return c

    def board_info_encode(self, info: dict[str, Any], cap: int) -> tuple[int, bytes]:
        keep = _Strings()
        out = _alloc(cap)
        length = ffi.new("size_t *")
        rc = lib.wedge_smp_board_info_encode(self._board_info(keep, info), out, cap, length)
        return rc, bytes(ffi.buffer(out, length[0])) if rc == 0 else b""

    def model_status_encode(self, status: dict[str, Any], cap: int) -> tuple[int, bytes]:
        keep = _Strings()
        out = _alloc(cap)
        length = ffi.new("size_t *")
        rc = lib.wedge_smp_model_status_encode(self._model_status(keep, status), out, cap, length)
        return rc, bytes(ffi.buffer(out, length[0])) if rc == 0 else b""

    def smp_respond(self, request: bytes, group_id: int, info: dict[str, Any], status: dict[str, Any],
                    cap: int) -> tuple[int, bytes]:
        keep = _Strings()
        req = _copy(request)
        out = _alloc(cap)
        length = ffi.new("size_t *")
        rc = lib.wedge_smp_respond(req, len(request), group_id, self._board_info(keep, info),
                                   self._model_status(keep, status), out, cap, length)
        return rc, bytes(ffi.buffer(out, length[0])) if rc == 0 else b""

    # -- MLPerf Tiny DUT --------------------------------------------------------------------------------------

    def format_f32(self, value: float) -> str:
        out = _alloc(32, "char *")
        n = lib.host_format_f32(value, out, 32)
        return bytes(ffi.buffer(out, n)).decode("ascii")

    def dut_parse(self, text: bytes) -> tuple[int, dict[str, Any]]:
        buf = _copy(text)
        cmd = ffi.new("wedge_dut_command_t *")
        rc = lib.wedge_dut_parse(buf, len(text), cmd)
        hex_digits = bytes(ffi.buffer(cmd.hex, cmd.hex_len)) if cmd.hex != ffi.NULL else b""
        return rc, {"kind": int(cmd.kind), "size_bytes": cmd.size_bytes, "runs": cmd.runs,
                    "warmup_runs": cmd.warmup_runs, "hex": hex_digits, "error": cmd.error}

    def dut_new(self, config: dict[str, str | None], input_cap: int, runtime: dict[str, Any] | None = None,
                step_us: int = 1) -> int:
        keep = _Strings()
        host = _Host()
        host.port.step_us = step_us
        c = keep.keep(ffi.new("wedge_dut_config_t *"))
        for name in ("firmware", "device", "vendor", "model", "timer"):
            setattr(c, name, keep.make(config.get(name)))
        rt = ffi.NULL
        if runtime is not None:
            rt = ffi.addressof(host.make_runtime(**runtime), "runtime")
        dut = ffi.new("wedge_dut_t *")
        input_buf = _alloc(input_cap)
        rc = lib.wedge_dut_init(dut, ffi.addressof(host.port, "port"), rt, c, input_buf, input_cap)
        if rc != 0:
            raise RuntimeError(f"wedge_dut_init: {ERROR_NAMES.get(rc, rc)}")
        handle = next(self._ids)
        self._sessions[handle] = (keep, host, c, dut, input_buf)
        return handle

    def dut_boot(self, handle: int) -> tuple[int, bytes]:
        _, host, _, dut, _ = self._sessions[handle]
        rc = lib.wedge_dut_boot(dut)
        return rc, host.take_uart()

    def dut_feed(self, handle: int, data: bytes) -> tuple[int, bytes]:
        _, host, _, dut, _ = self._sessions[handle]
        buf = _copy(data)
        rc = lib.wedge_dut_feed(dut, buf, len(data))
        return rc, host.take_uart()

    def dut_reset(self, handle: int) -> None:
        lib.wedge_dut_reset(self._sessions[handle][3])

    def dut_runtime_counters(self, handle: int) -> dict[str, int]:
        rt = self._sessions[handle][1].runtime
        return {"inferences": rt.inferences, "loaded_bytes": rt.loaded_bytes, "input_sum": rt.input_sum}

    def drop(self, handle: int) -> None:
        self._sessions.pop(handle, None)

    # -- boot check -------------------------------------------------------------------------------------------

    def boot_check(self, slot: bytes, slot_bytes: int, *, testing: bool, board: str | None, arena_bytes: int,
                   ops: tuple[str, ...] = (), self_test_rc: int = 0, self_test_reason: str | None = None,
                   self_confirm: bool = False, model_image: int = 1, boot_count: int = 1,
                   step_us: int = 7) -> dict[str, Any]:
        keep = _Strings()
        flash = _Flash(slot_bytes, content=slot)
        host = _Host()
        host.port.step_us = step_us
        runtime = host.make_runtime(arena_bytes, ops=ops, self_test_rc=self_test_rc,
                                    self_test_reason=self_test_reason)
        given = ffi.new("wedge_boot_input_t *")
        given.model_slot = ffi.addressof(flash.host, "flash")
        given.model_image = model_image
        given.testing = testing
        given.board = keep.make(board)
        given.policy = lib.WEDGE_CONFIRM_ON_SELF_TEST if self_confirm else lib.WEDGE_CONFIRM_BY_HOST
        given.boot_count = boot_count
        given.runtime = ffi.addressof(runtime, "runtime")
        given.port = ffi.addressof(host.port, "port")
        scratch = _alloc(ffi.sizeof("wedge_boot_scratch_t"), "wedge_boot_scratch_t *")
        result = ffi.new("wedge_boot_result_t *")
        rc = lib.wedge_boot_check(given, scratch, result)
        status = ffi.new("wedge_model_status_t *")
        lib.wedge_boot_status(result, boot_count, status)
        body = _alloc(512)
        length = ffi.new("size_t *")
        body_rc = lib.wedge_smp_model_status_encode(status, body, 512, length)
        return {
            "rc": rc, "decision": int(result.decision), "state": int(result.state),
            "event": ffi.string(result.event).decode("utf-8"), "self_test_us": result.self_test_us,
            "has_model": bool(result.has_model), "model_name": ffi.string(result.model_name).decode(),
            "model_hash": bytes(result.model_hash) if result.has_hash else None,
            "self_tests": runtime.self_tests, "body_offset": runtime.last_body_offset,
            "body_bytes": runtime.last_body_bytes, "confirmed_image": host.port.confirmed_image,
            "status_body": bytes(ffi.buffer(body, length[0])) if body_rc == 0 else None,
        }

    def precheck(self, manifest: bytes, arena_bytes: int, ops: tuple[str, ...]) -> str | None:
        """wedge_boot_precheck on a manifest (its ops against `ops`, its tensors against the arena)."""
        buf = _copy(manifest)
        m = ffi.new("wedge_manifest_t *")
        rc = lib.wedge_manifest_read(buf, len(manifest), m, ffi.NULL)
        if rc != 0:
            raise ValueError(f"manifest refused: {ERROR_NAMES.get(rc, rc)}")
        host = _Host(uart_cap=1, notify_cap=1)
        runtime = host.make_runtime(arena_bytes, ops=ops)
        text = _alloc(256, "char *")
        found = lib.wedge_boot_precheck(m, ffi.addressof(runtime, "runtime"), text, 256)
        return None if found == ffi.NULL else ffi.string(found).decode("utf-8")

    # -- stream records and frames ----------------------------------------------------------------------------

    def _record(self, keep: _Strings, record: dict[str, Any]) -> Any:
        c = keep.keep(ffi.new("wedge_record_t *"))
        c.version = record.get("version", 2)
        c.backfill = record.get("backfill", False)
        c.epoch = record.get("epoch", 0)
        c.seq = record["seq"]
        c.t_device_us = record["t_device_us"]
        c.model_id = record["model_id"]
        outputs = record["outputs"]
        c_outputs = keep.keep(ffi.new("wedge_output_t[]", max(len(outputs), 1)))
        for i, (dtype, quantized, scale, zero_point, values) in enumerate(outputs):
            ctype = ("int8_t", "uint8_t", "int16_t", "int32_t", "float")[dtype]
            array = keep.keep(_alloc(max(ffi.sizeof(ctype) * len(values), 1), f"{ctype} *"))
            for k, value in enumerate(values):
                array[k] = value
            c_outputs[i].dtype = dtype
            c_outputs[i].quantized = quantized
            c_outputs[i].scale = scale
            c_outputs[i].zero_point = zero_point
            c_outputs[i].values = array
            c_outputs[i].count = len(values)
        c.outputs = c_outputs
        c.n_outputs = len(outputs)
        return c

    def record_encode(self, record: dict[str, Any], cap: int | None = None) -> tuple[int, bytes]:
        keep = _Strings()
        c = self._record(keep, record)
        size = lib.wedge_record_size(c)
        cap = size if cap is None else cap
        out = _alloc(cap)
        length = ffi.new("size_t *")
        rc = lib.wedge_record_encode(c, out, cap, length)
        return rc, bytes(ffi.buffer(out, length[0])) if rc == 0 else b""

    def record_key(self, encoded: bytes) -> tuple[int, int, int]:
        buf = _copy(encoded)
        epoch = ffi.new("uint32_t *")
        seq = ffi.new("uint32_t *")
        rc = lib.wedge_record_key(buf, len(encoded), epoch, seq)
        return rc, epoch[0], seq[0]

    def frame_records(self, records: list[bytes], cap: int) -> tuple[int, bytes]:
        bufs = [_copy(r) for r in records]
        pointers = ffi.new("const uint8_t *[]", bufs)
        lens = ffi.new("uint16_t[]", [len(r) for r in records])
        out = _alloc(cap)
        length = ffi.new("size_t *")
        rc = lib.wedge_frame_records(pointers, lens, len(records), out, cap, length)
        return rc, bytes(ffi.buffer(out, length[0])) if rc == 0 else b""

    def fragments(self, encoded: bytes, payload: int) -> tuple[int, list[bytes]]:
        buf = _copy(encoded)
        total = lib.wedge_fragment_count(len(encoded), payload)
        frames = []
        for index in range(total):
            out = _alloc(payload)
            length = ffi.new("size_t *")
            rc = lib.wedge_frame_fragment(buf, len(encoded), payload, index, out, payload, length)
            if rc != 0:
                return rc, frames
            frames.append(bytes(ffi.buffer(out, length[0])))
        return (0 if total else ERRORS["WEDGE_ERR_INVAL"]), frames

    # -- control point and status -----------------------------------------------------------------------------

    def control_parse(self, data: bytes) -> tuple[int, int, dict[str, int]]:
        buf = _copy(data)
        c = ffi.new("wedge_control_t *")
        rc = lib.wedge_control_parse(buf, len(data), c)
        return rc, int(lib.wedge_control_att_error(rc)), {
            "opcode": c.opcode, "rate_mhz": c.rate_mhz, "epoch": c.epoch, "first_seq": c.first_seq,
            "end_seq": c.end_seq}

    def status_encode(self, status: dict[str, Any], cap: int = 256) -> tuple[int, bytes]:
        c = ffi.new("wedge_status_t *")
        for name in ("streaming", "device_id", "epoch", "oldest_seq", "next_seq", "capacity_records", "rate_mhz",
                     "model_id", "boot_count"):
            setattr(c, name, status[name])
        past = status.get("past", [])
        c.n_past = len(past)
        for i, (epoch, first, end) in enumerate(past[:8]):
            c.past[i].epoch, c.past[i].first_seq, c.past[i].end_seq = epoch, first, end
        out = _alloc(cap)
        length = ffi.new("size_t *")
        rc = lib.wedge_status_encode(c, out, cap, length)
        return rc, bytes(ffi.buffer(out, length[0])) if rc == 0 else b""

    # -- ring buffer and stream -------------------------------------------------------------------------------

    def ring_new(self, size_bytes: int, erase_bytes: int, write_bytes: int, max_record_bytes: int,
                 seed: int = 1) -> int:
        flash = _Flash(size_bytes, erase_bytes, write_bytes)
        seed_cell = ffi.new("uint32_t *", seed)
        handle = next(self._ids)
        self._sessions[handle] = {"flash": flash, "seed": seed_cell, "max": max_record_bytes, "ring": None,
                                  "host": _Host(uart_cap=1), "streams": {}}
        return handle

    def ring_open(self, handle: int) -> int:
        """Boot: a new ring struct over the same flash (RAM is gone, the flash is not)."""
        session = self._sessions[handle]
        session["ring"] = ring = ffi.new("wedge_ring_t *")
        session["streams"] = {}
        return lib.wedge_ring_open(ring, ffi.addressof(session["flash"].host, "flash"), session["max"],
                                   lib.host_random, session["seed"])

    def ring_state(self, handle: int) -> dict[str, Any]:
        ring = self._sessions[handle]["ring"]
        past = ffi.new("wedge_epoch_span_t[8]")
        n = lib.wedge_ring_past_epochs(ring, past, 8)
        return {"epoch": ring.epoch, "boot_count": ring.boot_count, "next_seq": ring.next_seq,
                "capacity_records": ring.capacity_records, "oldest_seq": lib.wedge_ring_oldest_seq(ring),
                "past": [(past[i].epoch, past[i].first_seq, past[i].end_seq) for i in range(n)]}

    def ring_span(self, handle: int, epoch: int) -> tuple[int, int, int] | None:
        span = ffi.new("wedge_epoch_span_t *")
        if lib.wedge_ring_span(self._sessions[handle]["ring"], epoch, span) != 0:
            return None
        return span.epoch, span.first_seq, span.end_seq

    def ring_append(self, handle: int, encoded: bytes) -> int:
        return lib.wedge_ring_append(self._sessions[handle]["ring"], _copy(encoded), len(encoded))

    def ring_produce(self, handle: int, record: dict[str, Any]) -> tuple[int, bytes]:
        """What the firmware does per window: encode the current epoch's next record, append it."""
        ring = self._sessions[handle]["ring"]
        rc, encoded = self.record_encode({**record, "version": 2, "epoch": ring.epoch, "seq": ring.next_seq})
        if rc != 0:
            return rc, b""
        return self.ring_append(handle, encoded), encoded

    def ring_read(self, handle: int, epoch: int, seq: int, offset: int = 0,
                  cap: int = 4096) -> tuple[int, bytes, int]:
        out = _alloc(cap)
        length = ffi.new("size_t *")
        record_len = ffi.new("size_t *")
        rc = lib.wedge_ring_read(self._sessions[handle]["ring"], epoch, seq, offset, out, cap, length, record_len)
        return rc, bytes(ffi.buffer(out, length[0])) if rc == 0 else b"", record_len[0]

    def ring_power_cut(self, handle: int, after_bytes: int) -> None:
        host = self._sessions[handle]["flash"].host
        host.power_cut_after_bytes = host.bytes_written + after_bytes

    def ring_power_on(self, handle: int) -> None:
        lib.host_flash_power_on(self._sessions[handle]["flash"].host)

    def ring_flash(self, handle: int) -> bytes:
        return self._sessions[handle]["flash"].contents()

    def ring_flash_stats(self, handle: int) -> dict[str, int]:
        host = self._sessions[handle]["flash"].host
        return {"bytes_written": host.bytes_written, "erases": host.erases}

    def stream_new(self, handle: int, rate_mhz: int = 1000) -> int:
        session = self._sessions[handle]
        stream = ffi.new("wedge_stream_t *")
        host = session["host"]
        rc = lib.wedge_stream_init(stream, session["ring"], ffi.addressof(host.port, "port"), rate_mhz)
        if rc != 0:
            raise RuntimeError(f"wedge_stream_init: {ERROR_NAMES.get(rc, rc)}")
        number = len(session["streams"]) + 1
        session["streams"][number] = stream
        return number

    def stream_control(self, handle: int, stream: int, data: bytes) -> tuple[int, int]:
        rc = lib.wedge_stream_control(self._sessions[handle]["streams"][stream], _copy(data), len(data))
        return rc, int(lib.wedge_control_att_error(rc))

    def stream_pump(self, handle: int, stream: int, payload: int, budget: int,
                    fail_after: int = -1) -> tuple[int, int, list[bytes]]:
        session = self._sessions[handle]
        host = session["host"]
        host.port.notify_count = 0
        host.port.notify_fail_after = fail_after
        sent = ffi.new("unsigned *")
        rc = lib.wedge_stream_pump(session["streams"][stream], payload, budget, sent)
        return rc, sent[0], host.take_notifications()

    def stream_pending(self, handle: int, stream: int) -> bool:
        return bool(lib.wedge_stream_pending(self._sessions[handle]["streams"][stream]))

    def stream_status(self, handle: int, stream: int, device_id: int, model_id: int) -> bytes:
        status = ffi.new("wedge_status_t *")
        lib.wedge_stream_status(self._sessions[handle]["streams"][stream], device_id, model_id, status)
        out = _alloc(256)
        length = ffi.new("size_t *")
        rc = lib.wedge_status_encode(status, out, 256, length)
        if rc != 0:
            raise RuntimeError(f"wedge_status_encode: {ERROR_NAMES.get(rc, rc)}")
        return bytes(ffi.buffer(out, length[0]))

    def ring_dump(self, handle: int) -> dict[str, Any]:
        """Every buffered record read back through wedge_ring_read, and what reading just outside each span
        gives (epoch, seq) -> rc."""
        state = self.ring_state(handle)
        spans = list(state["past"])
        current = self.ring_span(handle, state["epoch"])
        if current is not None:
            spans.append(current)
        records: list[tuple[int, int, bytes]] = []
        outside: dict[tuple[int, int], int] = {}
        for epoch, first, end in spans:
            for seq in range(first, end):
                rc, data, length = self.ring_read(handle, epoch, seq)
                if rc != 0 or len(data) != length:
                    raise AssertionError(f"record ({epoch}, {seq}) of a buffered span reads rc {rc}")
                records.append((epoch, seq, data))
            for seq in {first - 1, end, end + 1} - {-1}:
                outside[(epoch, seq)] = self.ring_read(handle, epoch, seq)[0]
        return {"state": state, "spans": spans, "records": records, "outside": outside}

    def ring_load(self, handle: int, content: bytes) -> None:
        """Put `content` into the region's flash as it is (a flash image taken elsewhere, or tampered with)."""
        flash = self._sessions[handle]["flash"]
        ffi.memmove(flash.mem, content[: flash.host.size_bytes], min(len(content), flash.host.size_bytes))
