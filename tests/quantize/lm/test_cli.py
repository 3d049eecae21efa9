"""`wedge quantize --task lm` and `wedge generate` as a user runs them, and every bad input as one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
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
    report = json.loads(result.stdout)  # progress lines go to stderr
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


def test_quantize_a_checkpoint_with_a_lora_to_calibrated_int4(tmp_path, tiny_checkpoint, tiny_lora, fine_tune_file):
    adapter, _ = tiny_lora
    result = _quantize(str(tiny_checkpoint), "--lora", str(adapter), "--weights", "int4", "--algorithm", "awq+gptq",
                       "--calib", str(fine_tune_file), "--calib-tokens", "1024", "--eval-text", str(fine_tune_file),
                       "--out-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["name"] == "tiny-slm-stdlib-lora" and report["weights"] == "int4"
    assert report["rtn_baseline"]["scheme"].endswith("rtn (MatMulNBits)")
    assert report["calibration"]["tokens"] == 1024 and report["calibration"]["output_error_ratio"] < 1.0
    assert report["board_fit"]["decode_tokens_per_s_estimate"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "tiny-slm-stdlib-lora.int4.onnx"]
    assert "[wedge] awq+gptq int4, layer by layer" in result.stderr  # progress as lines: no terminal here


def test_the_report_table_shows_rtn_beside_the_method_and_the_board_estimate(tmp_path, tiny_checkpoint):
    result = _quantize(str(tiny_checkpoint), "--weights", "int4", "--algorithm", "gptq", "--calib-tokens", "512",
                       "--out-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "rtn, same run" in result.stdout and "decode tokens/s, board" in result.stdout
    assert "the fp32 ONNX built on the way was deleted" in result.stdout


def _adapter_for_another_model(tmp_path):
    from wedge.quantize.lm.lora import save_adapter

    rng = np.random.default_rng(0)
    pair = (rng.standard_normal((4, 32)).astype(np.float32), rng.standard_normal((32, 4)).astype(np.float32))
    return save_adapter(tmp_path / "other-lora", {"layers.0.q_proj": pair}, r=4, lora_alpha=8)


def _gpt2_adapter(tmp_path):
    folder = _adapter_for_another_model(tmp_path)
    config = json.loads((folder / "adapter_config.json").read_text())
    config["target_modules"] = ["c_attn", "c_proj"]
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def _broken_checkpoint(tiny_checkpoint, tmp_path, change):
    import shutil

    folder = tmp_path / "broken-ckpt"
    shutil.copytree(tiny_checkpoint, folder)
    change(folder)
    return folder


@pytest.mark.parametrize(("make", "extra", "fragment"), [
    (lambda ckpt, tmp: tmp, [], "has no config.json"),
    (lambda ckpt, tmp: _broken_checkpoint(ckpt, tmp, lambda f: (f / "config.json").write_text(
        json.dumps({**json.loads((f / "config.json").read_text()), "model_type": "phi3"}))), [],
     "model_type 'phi3'"),
    (lambda ckpt, tmp: _broken_checkpoint(ckpt, tmp, lambda f: (f / "model.safetensors").write_bytes(b"\x00" * 64)),
     [], "not a readable safetensors file"),
    (lambda ckpt, tmp: ckpt, ["--lora", "ADAPTER_GPT2"], "targets c_attn, c_proj"),
    (lambda ckpt, tmp: ckpt, ["--lora", "ADAPTER_OTHER"], "trained on another base model"),
    (lambda ckpt, tmp: ckpt, ["--lora", "NOWHERE"], "no such adapter folder"),
])
def test_bad_checkpoint_or_adapter_inputs_are_one_line_and_write_nothing(tmp_path, tiny_checkpoint, make, extra,
                                                                         fragment):
    model = make(tiny_checkpoint, tmp_path / "input")
    (tmp_path / "input").mkdir(exist_ok=True)
    replacements = {"ADAPTER_GPT2": lambda: str(_gpt2_adapter(tmp_path)),
                    "ADAPTER_OTHER": lambda: str(_adapter_for_another_model(tmp_path)),
                    "NOWHERE": lambda: str(tmp_path / "nowhere")}
    args = [replacements[a]() if a in replacements else a for a in extra]
    out = tmp_path / "out"
    result = _quantize(str(model), *args, "--out-dir", str(out))
    _one_line_error(result, fragment)
    assert not out.exists() or not any(out.iterdir())
    assert "loading model: done" not in result.stderr  # the progress lines do not claim the failed stage done


@pytest.mark.parametrize("block", ["48", "0", "512"])
def test_a_block_size_matmulnbits_has_no_kernel_for_is_refused_before_any_work(tmp_path, tiny_checkpoint, block):
    out = tmp_path / "out"
    result = _quantize(str(tiny_checkpoint), "--weights", "int4", "--block-size", block, "--out-dir", str(out))
    assert result.exit_code == 2 and f"Invalid value for '--block-size': '{block}'" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_awq_needs_weights_that_a_quantized_onnx_no_longer_has(tmp_path, tiny_int8):
    result = _quantize(str(tiny_int8), "--weights", "int4", "--algorithm", "awq", "--out-dir", str(tmp_path / "o"))
    _one_line_error(result, "give the Hugging Face checkpoint or GGUF instead")


def test_generate_chats_with_the_models_template_and_reports_its_speed(tmp_path, tiny_checkpoint):
    out = tmp_path / "q"
    assert _quantize(str(tiny_checkpoint), "--out-dir", str(out)).exit_code == 0
    model = out / "tiny-slm.int8.onnx"
    result = CliRunner().invoke(main, ["generate", str(model), "--prompt", "What is a decorator?", "--chat",
                                       "--system", "Answer briefly.", "--max-tokens", "16"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("> What is a decorator?\n") and len(result.stdout) > 30
    assert "first token after" in result.stderr and "tokens/s decoding" in result.stderr


def test_generate_samples_reproducibly_with_a_seed(tiny_int8):
    def run(*extra: str) -> str:
        result = CliRunner().invoke(main, ["generate", str(tiny_int8), "--prompt", "The while statement",
                                           "--max-tokens", "20", "--no-echo", *extra])
        assert result.exit_code == 0, result.output
        return result.stdout

    sampled = run("--temperature", "1.2", "--top-p", "0.95", "--seed", "3")
    assert sampled == run("--temperature", "1.2", "--top-p", "0.95", "--seed", "3")
    assert sampled != run()  # greedy goes elsewhere


def test_generate_refuses_chat_without_a_template_and_system_without_chat(tiny_int8):
    _one_line_error(CliRunner().invoke(main, ["generate", str(tiny_int8), "--prompt", "hi", "--chat"]),
                    "carries no chat template")
    result = CliRunner().invoke(main, ["generate", str(tiny_int8), "--prompt", "hi", "--system", "be brief"])
    assert result.exit_code == 2 and "--system goes with --chat" in result.output


def test_generate_writes_progress_lines_when_stdout_is_not_a_terminal(tiny_int8, monkeypatch):
    import wedge.cli.generate as generate_cli

    monkeypatch.setattr(generate_cli, "PROGRESS_EVERY_S", 0.0)  # a line after every piece instead of every 10 s
    result = CliRunner().invoke(main, ["generate", str(tiny_int8), "--prompt", "The while statement",
                                       "--max-tokens", "12"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("The while statement") and "\x1b[" not in result.stdout  # echoed, unstyled
    progress = [line for line in result.stderr.splitlines() if line.startswith("[generate] ")]
    counts = [int(line.split()[1].split("/")[0]) for line in progress if line.split()[1].endswith("/12")]
    assert len(counts) >= 5 and counts == sorted(counts) and counts[-1] >= 10
    assert "stopped at --max-tokens" in result.stderr
