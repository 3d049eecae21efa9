"""`wedge quantize --task lm` and `wedge generate` as a user runs them, and every bad input as one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from wedge.cli import main
from wedge.quantize.lm.tiny import heldout_text
from wedge.quantize.lm.tokenizer import TextTokenizer
from wedge.samples import sample_path


def _quantize(*args: str) -> object:
    return CliRunner().invoke(main, ["quantize", "--task", "lm", "--eval-tokens", "400", "--no-speed", *args])


def _one_line_error(result: object, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and fragment in lines[-1], result.output
    assert "Traceback" not in result.output


def test_quantize_task_lm_int4_prints_a_json_report(tmp_path, tiny_model, eval_text_file):
    result = _quantize(str(tiny_model), "--weights", "int4", "--block-size", "32", "--algorithm", "rtn",
                       "--eval-text", str(eval_text_file), "--context", "128", "--out-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["weights"] == "int4" and report["perplexity"]["window"] == 128
    assert report["board_fit"]["board"] == "glasses-soc" and report["board_fit"]["context_tokens"] == 128
    assert (tmp_path / "tiny_slm.int4.onnx").is_file()


def test_quantize_task_lm_renders_tables_for_people(tmp_path, tiny_model):
    result = _quantize(str(tiny_model), "--board", "glasses-esp32s3", "--out-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "perplexity" in result.output and "memory.psram_bytes" in result.output
    assert "no --eval-text" in result.output


def test_generate_streams_a_continuation(tiny_int8):
    done = subprocess.run([sys.executable, "-m", "wedge.cli", "generate", str(tiny_int8), "--prompt",
                           "The while statement", "--max-tokens", "12"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip()) > 5


def test_generate_stops_at_the_context_it_was_built_for(tiny_model):
    result = CliRunner().invoke(main, ["generate", str(tiny_model), "--prompt", "x", "--max-tokens", "300"])
    _one_line_error(result, "built for 256")


def test_a_model_that_is_not_a_decoder_lm_is_refused(tmp_path):
    _one_line_error(_quantize(str(sample_path("digits")), "--out-dir", str(tmp_path)), "not a decoder language model")
    result = CliRunner().invoke(main, ["generate", str(sample_path("digits")), "--prompt", "hi"])
    _one_line_error(result, "not a decoder language model")


def test_an_undecodable_text_file_is_refused(tmp_path, tiny_model):
    bad = tmp_path / "notes.txt"
    bad.write_bytes(b"\xff\xfe\x00h\x00i" * 100)
    _one_line_error(_quantize(str(tiny_model), "--eval-text", str(bad), "--out-dir", str(tmp_path / "o")), "not UTF-8")


def test_a_tokenizer_with_another_vocabulary_is_refused(tmp_path, tiny_model):
    other = tmp_path / "tokenizer.json"
    other.write_text(TextTokenizer.train_byte_level([heldout_text()], 300).to_json(), encoding="utf-8")
    _one_line_error(_quantize(str(tiny_model), "--tokenizer", str(other), "--out-dir", str(tmp_path / "o")),
                    "the tokenizer has 300 tokens")
    result = CliRunner().invoke(main, ["generate", str(tiny_model), "--prompt", "hi", "--tokenizer", str(other)])
    _one_line_error(result, "do not belong together")


def test_a_context_longer_than_the_models_is_refused(tmp_path, tiny_model):
    _one_line_error(_quantize(str(tiny_model), "--context", "100000", "--out-dir", str(tmp_path)),
                    "longer than the model's context of 256")


@pytest.mark.parametrize(("args", "fragment"), [
    (["--weights", "int8", "--algorithm", "kquant"], "does not apply to int8"),
    (["--weights", "int4", "--algorithm", "dynamic"], "does not apply to int4"),
])
def test_an_algorithm_for_the_other_precision_is_refused(tmp_path, tiny_model, args, fragment):
    _one_line_error(_quantize(str(tiny_model), *args, "--out-dir", str(tmp_path)), fragment)


def test_a_missing_model_file_is_one_line(tmp_path):
    _one_line_error(_quantize(str(tmp_path / "nope.onnx"), "--out-dir", str(tmp_path)), "no such model file")


def test_a_context_of_zero_tokens_is_refused(tmp_path, tiny_model):
    _one_line_error(_quantize(str(tiny_model), "--context", "0", "--out-dir", str(tmp_path)), "at least 1 token")
