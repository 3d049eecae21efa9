"""`wedge export`: a bridge's database as CSV or Parquet, one row a record, labels and class probabilities kept."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from wedge.edge.bridge.errors import SinkError
from wedge.edge.bridge.export import export_records
from wedge.edge.bridge.sinks.sqlite import SqliteSink
from wedge.edge.bridge.stream_record import StreamRecord
from wedge.firmware.protocol.ble_model_info import ModelInfo
from wedge.firmware.protocol.ble_records import Output, OutputDType, Record
from wedge.firmware.protocol.heart_rate import HeartRateMeasurement

PPG = ModelInfo(7, "ppg_quality", "1.0.0", ("good", "motion artifact", "no contact"))
T0_US = 1_700_000_000_000_000


def _database(path: Path) -> None:
    logits = [(3.0, 0.0, 0.0), (0.0, 3.0, 0.0), (0.0, 0.0, 3.0)]
    records = [StreamRecord.from_record("ring", Record(s, T0_US + s * 500_000, 7,
                                                        (Output(OutputDType.FLOAT32, logits[s % 3]),), epoch=4),
                                        T0_US + s * 500_000 + 20_000, "wedge-ring", PPG) for s in range(9)]
    records.append(StreamRecord.from_heart_rate("strap", 0, HeartRateMeasurement(72, contact=True), T0_US))

    async def fill() -> None:
        sink = SqliteSink(path)
        await sink.open()
        await sink.write(records)
        await sink.close()

    asyncio.run(fill())


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wedge.cli", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})


def test_csv_has_one_row_a_record_with_label_score_and_a_column_per_class(tmp_path: Path) -> None:
    db = tmp_path / "stream.db"
    _database(db)
    result = run_cli("export", str(db), "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "stream.csv").open()))
    ring = [r for r in rows if r["device"] == "ring"]
    assert [r["label"] for r in ring] == ["good", "motion artifact", "no contact"] * 3
    assert ring[0]["model"] == "ppg_quality" and ring[0]["t_device"] == "2023-11-14T22:13:20.000Z"
    assert float(ring[1]["p_motion artifact"]) == pytest.approx(float(ring[1]["score"]))
    assert float(ring[1]["score"]) > 0.8
    (strap,) = [r for r in rows if r["device"] == "strap"]
    assert (strap["kind"], strap["label"], float(strap["score"]), strap["p_good"]) == ("heart_rate", "bpm", 72.0, "")


def test_csv_goes_to_stdout_with_a_dash(tmp_path: Path) -> None:
    db = tmp_path / "stream.db"
    _database(db)
    result = run_cli("export", str(db), "-o", "-", "--device", "ring")
    assert result.returncode == 0, result.stderr
    assert len(list(csv.DictReader(io.StringIO(result.stdout)))) == 9


def test_parquet_keeps_types_timestamps_and_lists(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet export needs pyarrow (the export extra)")
    db = tmp_path / "stream.db"
    _database(db)
    result = export_records(db, tmp_path / "out.parquet", "parquet", device="ring")
    assert result.rows == 9
    table = pq.read_table(tmp_path / "out.parquet")
    assert str(table.schema.field("t_device").type) == "timestamp[us, tz=UTC]"
    assert table.column("label").to_pylist()[:3] == ["good", "motion artifact", "no contact"]
    assert table.column("outputs").to_pylist()[0] == [3.0, 0.0, 0.0]
    assert table.column("t_device").to_pylist()[1].timestamp() == pytest.approx((T0_US + 500_000) / 1e6)


def test_bad_input_is_one_line_and_leaves_no_file(tmp_path: Path) -> None:
    missing = run_cli("export", str(tmp_path / "nope.db"))
    assert missing.returncode == 1 and missing.stderr.strip() == f"error: {tmp_path / 'nope.db'}: no such database"
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    junk = run_cli("export", str(tmp_path / "junk.db"), "--format", "csv")
    assert junk.returncode == 1 and junk.stderr.startswith("error: ") and len(junk.stderr.splitlines()) == 1
    assert not (tmp_path / "junk.csv").exists()
    with pytest.raises(SinkError, match="binary"):
        export_records(tmp_path / "junk.db", None, "parquet")
