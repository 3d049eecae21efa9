"""Device core (firmware/) figures: code and RAM per module on Cortex-M4F and Cortex-M33 at -Os, and instructions per
encoded record under QEMU -icount.

Prints one JSON object on stdout (progress on stderr):
- per module, flash (.text + .rodata + .data) and static RAM (.data + .bss) as linked into firmware/size/probe.c
  (every public function kept, --gc-sections), read from the linker map; the totals of the core's own modules,
  of zcbor's C runtime (mcumgr links it too in a Zephyr build) and of libc/libgcc; `arm-none-eabi-size` of the
  whole probe as a cross-check; the same totals for what smaller applications link (a ring's firmware without
  the MLPerf Tiny DUT; the stream alone);
- the RAM of the state structs an application holds (ring index, stream, DUT, boot result; the boot scratch is
  needed during the check only), and the largest stack frame per module (-fstack-usage);
- instructions per operation on the Cortex-M4 under `qemu-system-arm -M mps2-an386 -icount shift=10`: every
  instruction is 2^10 ns of virtual time and SysTick counts it at 25 MHz (25.6 ticks an instruction); a nop loop
  calibrates, an empty call loop is subtracted; two runs must agree (deterministic);
- the issue's goals: whole core <= 8 KiB flash and <= 1 KiB RAM plus the ring buffer on Cortex-M4F, <= 2,000
  instructions for a 3-value record.

Usage: python bench/firmware_size.py [--build DIR]
Needs make, arm-none-eabi-gcc (with newlib), qemu-system-arm and the zcbor package (its C runtime).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Final

FIRMWARE: Final[Path] = Path(__file__).resolve().parents[1] / "firmware"
CPUS: Final[dict[str, str]] = {"m4": "cortex-m4f", "m33": "cortex-m33"}
PROFILES: Final[dict[str, str]] = {"whole_core": "size_probe", "ring_firmware_without_dut": "size_probe_ring",
                                   "stream_only": "size_probe_stream"}
ZCBOR_MODULES: Final[frozenset[str]] = frozenset({"zcbor_common", "zcbor_decode", "zcbor_encode"})
FLASH_KINDS: Final[tuple[str, ...]] = (".text", ".rodata", ".data")
RAM_KINDS: Final[tuple[str, ...]] = (".data", ".bss", "COMMON")
STATE_STRUCTS: Final[tuple[str, ...]] = ("wedge_ring_t", "wedge_stream_t", "wedge_dut_t", "wedge_boot_result_t",
                                         "wedge_model_status_t", "wedge_boot_scratch_t", "wedge_manifest_t")
# What a ring's application keeps in RAM for as long as it runs (the boot scratch and the manifest only during
# the boot check; the DUT and its input buffer only in a firmware that answers the MLPerf Tiny runner).
RESIDENT_STATE: Final[tuple[str, ...]] = ("wedge_ring_t", "wedge_stream_t", "wedge_boot_result_t")
ICOUNT_SHIFT: Final[int] = 10
SYSTICK_HZ: Final[int] = 25_000_000
TICKS_PER_INSTRUCTION: Final[float] = (1 << ICOUNT_SHIFT) * SYSTICK_HZ / 1e9
FLASH_GOAL_BYTES: Final[int] = 8 * 1024
RAM_GOAL_BYTES: Final[int] = 1024
INSTRUCTIONS_GOAL: Final[int] = 2000
_SECTION: Final = re.compile(r"^ (\.\S+|COMMON)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)$")
_NAME_ONLY: Final = re.compile(r"^ (\.\S+|COMMON)\s*$")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(1)


def make(build: Path, *targets: str) -> None:
    result = subprocess.run(["make", "-C", str(FIRMWARE), f"BUILD={build}", *targets], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        fail("make " + " ".join(targets) + " failed:\n" + "\n".join(tail))


def module_of(obj: str) -> str:
    """`.../libwedge.a(ring.o)` -> ring; libc / libgcc members -> libc."""
    member = re.search(r"\(([^)]+)\)$", obj)
    name = (member.group(1) if member else obj.rsplit("/", 1)[-1]).removesuffix(".o")
    if member and "libwedge.a" not in obj:
        return "libc"
    return name if member else "probe"


def map_sizes(path: Path) -> dict[str, dict[str, int]]:
    """Bytes per module and section kind, from the memory map part of a GNU ld map file."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Linker script and memory map"))
    sizes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    pending: str | None = None
    for line in lines[start:]:
        only = _NAME_ONLY.match(line)
        if only:
            pending = only.group(1)
            continue
        match = _SECTION.match(line)
        name = (match.group(1) or pending) if match else None
        pending = None
        if match is None or name is None:
            continue
        kind = next((k for k in (*FLASH_KINDS, ".bss", "COMMON") if name.startswith(k)), None)
        if kind is not None:
            sizes[module_of(match.group(4))][kind] += int(match.group(3), 16)
    return sizes


def flash_ram(kinds: dict[str, int]) -> dict[str, int]:
    return {"flash_bytes": sum(kinds.get(k, 0) for k in FLASH_KINDS),
            "ram_bytes": sum(kinds.get(k, 0) for k in RAM_KINDS)}


def struct_sizes(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", "-S", "-t", "d", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3].startswith("sizeof_"):
            sizes[parts[3].removeprefix("sizeof_")] = int(parts[1])
    return {name: sizes[name] for name in STATE_STRUCTS}


def stack_frames(folder: Path) -> dict[str, int]:
    """The largest stack frame of each module's functions (-fstack-usage .su files)."""
    frames = {}
    for su in sorted(folder.glob("*.su")):
        sizes = [int(line.split("\t")[1]) for line in su.read_text().splitlines() if "\t" in line]
        frames[su.stem] = max(sizes, default=0)
    return frames


def size_of(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def totals(sizes: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    def total(names: set[str]) -> dict[str, int]:
        picked = [flash_ram(sizes[n]) for n in names if n in sizes]
        return {"flash_bytes": sum(p["flash_bytes"] for p in picked), "ram_bytes": sum(p["ram_bytes"] for p in picked)}

    core = {name for name in sizes if name not in ("probe", "libc") and name not in ZCBOR_MODULES}
    return {"core": total(core), "zcbor_runtime": total(set(ZCBOR_MODULES)), "libc_libgcc": total({"libc"})}


def cpu_report(build: Path, key: str) -> dict[str, Any]:
    folder = build / key
    sizes = map_sizes(folder / "size_probe.elf.map")
    modules = {name: flash_ram(kinds) for name, kinds in sorted(sizes.items())
               if name not in ("probe", "libc") and name not in ZCBOR_MODULES}
    frames = stack_frames(folder)
    return {
        "modules": modules,
        **totals(sizes),
        "profiles": {name: totals(map_sizes(folder / f"{probe}.elf.map")) for name, probe in PROFILES.items()},
        "arm_none_eabi_size_of_probe": size_of(folder / "size_probe.elf"),
        "state_struct_bytes": struct_sizes(folder / "size_probe.elf"),
        "max_stack_frame_bytes": {name: frames[name] for name in modules if name in frames},
    }


def run_bench(elf: Path) -> dict[str, tuple[int, int]]:
    command = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "stdio",
               "-semihosting-config", "enable=on,target=native",
               "-icount", f"shift={ICOUNT_SHIFT},align=off,sleep=off", "-kernel", str(elf)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if run.returncode != 0 or "wedge bench done" not in run.stdout:
        fail(f"the QEMU benchmark firmware did not finish (exit {run.returncode}): {run.stdout[-500:]}")
    lines = {}
    for line in run.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            lines[parts[0]] = (int(parts[1]), int(parts[2]))
    return lines


def instructions(build: Path) -> dict[str, Any]:
    elf = build / "m4" / "wedge_bench.elf"
    first, second = run_bench(elf), run_bench(elf)
    per_run = {name: ticks / runs / TICKS_PER_INSTRUCTION for name, (runs, ticks) in first.items()}
    overhead = per_run["call_overhead"]
    return {
        "icount_shift": ICOUNT_SHIFT,
        "deterministic": first == second,
        "calibration_10_nops_loop": round(per_run["nop10_loop"], 2),
        "call_overhead": round(overhead, 2),
        "record_encode_3_values": round(per_run["record_encode_3_values"] - overhead, 1),
        "encode_append_notify_per_window": round(per_run["encode_append_notify"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, help="build folder (default: a temporary one)")
    args = parser.parse_args()
    for tool in ("make", "arm-none-eabi-gcc", "arm-none-eabi-nm", "arm-none-eabi-size", "qemu-system-arm"):
        if shutil.which(tool) is None:
            fail(f"{tool} is not installed (Debian: make gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")
    with tempfile.TemporaryDirectory(prefix="wedge-firmware-") as temporary:
        build = args.build or Path(temporary)
        log("building the core for Cortex-M4F and Cortex-M33 (-Os) and the QEMU firmware ...")
        make(build, "m4", "m33", "sizes", "qemu")
        report: dict[str, Any] = {key_name: cpu_report(build, key) for key, key_name in CPUS.items()}
        log("running the benchmark firmware twice under QEMU -icount ...")
        report["instructions_cortex_m4"] = instructions(build)
    m4 = report["cortex-m4f"]
    resident = sum(m4["state_struct_bytes"][name] for name in RESIDENT_STATE)
    report["resident_ram_bytes_cortex_m4f"] = {"structs": list(RESIDENT_STATE), "bytes": resident}
    encode = report["instructions_cortex_m4"]["record_encode_3_values"]
    report["goals"] = {
        "core_flash_bytes": m4["core"]["flash_bytes"],
        "core_flash_goal_bytes": FLASH_GOAL_BYTES,
        "core_flash_met": m4["core"]["flash_bytes"] <= FLASH_GOAL_BYTES,
        "core_with_zcbor_flash_bytes": m4["core"]["flash_bytes"] + m4["zcbor_runtime"]["flash_bytes"],
        "profiles_within_flash_goal": [name for name, p in m4["profiles"].items()
                                       if p["core"]["flash_bytes"] <= FLASH_GOAL_BYTES],
        "resident_ram_bytes": resident + m4["core"]["ram_bytes"],
        "ram_goal_bytes": RAM_GOAL_BYTES,
        "ram_met": resident + m4["core"]["ram_bytes"] <= RAM_GOAL_BYTES,
        "record_encode_instructions": encode,
        "instructions_goal": INSTRUCTIONS_GOAL,
        "instructions_met": encode <= INSTRUCTIONS_GOAL,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
