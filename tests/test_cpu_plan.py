"""The path ``auto`` plans on each kind of CPU (``cpu_features``, ``path_evidence``,
``compute_path.plan_path``), with faked CPUs and faked instrument figures, and the reason the
status bar gives. This machine's own CPU is never what a test relies on.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.detection import compute_path, cpu_features, path_evidence
from autolabel_gui.detection.base import DetectorConfig
from autolabel_gui.detection.batch import BatchDetector
from autolabel_gui.detection.compute_path import PathPlan, plan_path
from autolabel_gui.detection.cpu_features import CpuFeatures, parse_cpuinfo, read_cpu_features
from autolabel_gui.detection.ids import model_id_for
from autolabel_gui.detection.path_evidence import Evidence, PathFigures, parse_evidence

_X86 = "fpu vme de pse tsc msr pae mce cx8 sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2"
_AVX512 = f"{_X86} avx512f avx512dq avx512cd avx512bw avx512vl"
CPUS = {
    "avx2": f"processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: {_X86}\n",
    "vnni": f"processor\t: 0\nflags\t\t: {_AVX512} avx512_vnni\n",  # Cascade Lake
    "avx_vnni": f"processor\t: 0\nflags\t\t: {_X86} avx_vnni\n",  # Alder Lake
    "avx512_bf16": f"processor\t: 0\nflags\t\t: {_AVX512} avx512_bf16 avx512_vnni\n",  # Zen 4, Cooper Lake
    "amx": f"processor\t: 0\nflags\t\t: {_AVX512} avx512_bf16 avx512_vnni amx_bf16 amx_tile amx_int8\n",
    "arm": "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 bf16 i8mm\n",
}
TRAINED = 85.0  # the instrument's fp32 AP50, points: its figures count
PROVEN = Evidence({"bf16": PathFigures(-0.3, -0.2, 2.1), "int8": PathFigures(-0.6, -0.4, 1.5)}, "test", TRAINED)
COSTLY = Evidence({"bf16": PathFigures(-2.4, -1.9, 2.1), "int8": PathFigures(-0.6, -0.4, 1.5)}, "test", TRAINED)
UNPROVEN = Evidence()


def cpu(name: str) -> CpuFeatures:
    return parse_cpuinfo(CPUS[name], "aarch64" if name == "arm" else "x86_64")


@pytest.fixture
def on_a_cpu(monkeypatch):
    """No GPU expected, whatever this machine has."""
    monkeypatch.setattr(compute_path, "accelerator_expected", lambda device: False)


def test_the_flags_say_which_units_the_cpu_has() -> None:
    assert (cpu("avx2").bf16_unit, cpu("avx2").vnni_unit) == (None, None)
    assert (cpu("vnni").bf16_unit, cpu("vnni").vnni_unit) == (None, "AVX-512 VNNI")
    assert cpu("avx_vnni").vnni_unit == "AVX-VNNI"
    assert cpu("avx512_bf16").bf16_unit == "AVX-512 BF16"
    assert cpu("amx").bf16_unit == "AMX"  # AMX first: it is the faster of the two
    # ARM's bf16/i8mm are other instructions; torch's CPU paths here are measured on x86 only
    assert cpu("arm").known and (cpu("arm").bf16_unit, cpu("arm").vnni_unit) == (None, None)
    assert not parse_cpuinfo("").known and not parse_cpuinfo("processor : 0\n").known


def test_cpuinfo_is_read_with_a_bound(tmp_path) -> None:
    big = tmp_path / "cpuinfo"
    block = CPUS["amx"] + "\n"
    big.write_text(block * (2 * cpu_features.READ_LIMIT // len(block)))
    assert big.stat().st_size > cpu_features.READ_LIMIT
    assert read_cpu_features(big, "x86_64").bf16_unit == "AMX"
    assert read_cpu_features(tmp_path / "absent", "x86_64") == CpuFeatures(arch="x86_64")


@pytest.mark.parametrize(("name", "evidence", "path", "reason"), [
    ("avx2", PROVEN, "fast", "this CPU has no native bf16; no VNNI"),
    ("vnni", PROVEN, "int8", "this CPU has AVX-512 VNNI; this CPU has no native bf16"),
    ("avx_vnni", PROVEN, "int8", "this CPU has AVX-VNNI; this CPU has no native bf16"),
    ("avx512_bf16", PROVEN, "bf16", "this CPU has AVX-512 BF16"),
    ("amx", PROVEN, "bf16", "this CPU has AMX"),
    ("arm", PROVEN, "fast", "this CPU has no native bf16; no VNNI"),
    ("amx", UNPROVEN, "fast", "bf16 and int8 not yet proven on the instrument"),
    ("avx512_bf16", COSTLY, "int8", "this CPU has AVX-512 VNNI; bf16 loses 2.4 AP on the instrument"),
    ("vnni", UNPROVEN, "fast", "this CPU has no native bf16; int8 not yet proven on the instrument"),
    ("avx512_bf16", Evidence({"int8": PathFigures(-0.1, 0, 1.4)}, "", TRAINED), "int8",
     "this CPU has AVX-512 VNNI; bf16 not yet proven"),
])
def test_auto_on_each_kind_of_cpu(on_a_cpu, name, evidence, path, reason) -> None:
    assert plan_path("auto", "cpu", cpu(name), evidence) == PathPlan(path, reason)


def test_auto_never_plans_a_path_the_instrument_measured_slower() -> None:
    """``auto`` exists to be fast: a path within the AP tolerance but measured at half fp32's speed
    (bf16 on AVX-512 BF16 without AMX can be) must not be planned over the fast path."""
    evidence = parse_evidence('{"paths": {"bf16": {"ap_delta": -0.1, "ap50_delta": 0.0, "ratio": 0.5},'
                              ' "int8": {"ap_delta": -0.2, "ap50_delta": 0.0, "ratio": 0.6}},'
                              ' "reference": {"ap": 60.0, "ap50": 85.0}}')
    assert plan_path("auto", "cpu", cpu("avx512_bf16"), evidence) == PathPlan(
        "fast", "bf16 runs at 0.50x fp32 on the instrument, not faster than fp32's; "
                "int8 runs at 0.60x fp32 on the instrument, not faster than fp32's")
    # with the fast path's own figures, a path must beat them, not only fp32
    measured = Evidence({"fast": PathFigures(0.0, 0.0, 1.3), "bf16": PathFigures(-0.1, 0.0, 1.2),
                         "int8": PathFigures(-0.2, 0.0, 1.5)}, "", TRAINED)
    assert plan_path("auto", "cpu", cpu("avx512_bf16"), measured) == PathPlan(
        "int8", "this CPU has AVX-512 VNNI; bf16 runs at 1.20x fp32 on the instrument, "
                "not faster than the fast path's 1.30x")


def test_an_unknown_cpu_and_a_gpu(monkeypatch) -> None:
    monkeypatch.setattr(compute_path, "accelerator_expected", lambda device: False)
    assert plan_path("auto", "auto", CpuFeatures(), PROVEN) == PathPlan("fast", "this CPU's features are unknown")
    monkeypatch.setattr(compute_path, "accelerator_expected", lambda device: True)
    assert plan_path("auto", "auto", cpu("amx"), PROVEN) == PathPlan("gpu-auto", "a GPU is expected")


def test_a_planned_or_chosen_path_is_never_planned_again(on_a_cpu) -> None:
    """A Ray worker on a CPU without bf16 runs the bf16 its driver planned: the run id names it."""
    for precision in ("bf16", "int8", "fast", "fp32", "gpu-auto"):
        assert plan_path(precision, "auto", cpu("avx2"), UNPROVEN) == PathPlan(precision)


def test_each_path_has_its_own_run_id_and_the_old_ones_stay(on_a_cpu) -> None:
    config = DetectorConfig(weights="w.pth", device="cpu")
    ids = {p: model_id_for(replace(config, precision=p)) for p in ("fast", "bf16", "int8", "fp32")}
    assert len(set(ids.values())) == 4
    # the ids caches were made under before: unchanged
    assert compute_path.id_part("fast", "cpu") == "fast-sampling/v1"
    assert compute_path.id_part("fp32", "cpu") == "fp32"
    assert compute_path.id_part("gpu-auto", "cpu") == "auto"


def test_auto_gets_the_run_id_of_the_path_it_planned(monkeypatch, on_a_cpu) -> None:
    config = DetectorConfig(weights="w.pth", device="cpu")
    monkeypatch.setattr(compute_path, "this_cpu", lambda: cpu("amx"))
    monkeypatch.setattr(compute_path, "shipped_evidence", lambda: PROVEN)
    assert model_id_for(config) == model_id_for(replace(config, precision="bf16"))
    monkeypatch.setattr(compute_path, "shipped_evidence", lambda: UNPROVEN)
    assert model_id_for(config) == model_id_for(replace(config, precision="fast"))


def test_the_evidence_file_is_read_as_data() -> None:
    text = json.dumps({"paths": {"bf16": {"ap_delta": -0.4, "ap50_delta": -0.2, "ratio": 2.0},
                                 "int8": {"ap_delta": "NaN", "ap50_delta": 0, "ratio": 1},
                                 "fast": {"ap_delta": -0.1}, "x": [1]},
                       "machine": "m", "cpu_flags": [], "date": "", "torch": "", "command": ""})
    evidence = parse_evidence(text)
    assert evidence.paths == {"bf16": PathFigures(-0.4, -0.2, 2.0)} and evidence.machine == "m"
    for broken in ("", "[]", '{"paths": 3}', "{" * 100_000):
        assert parse_evidence(broken) == Evidence()


def test_an_instrument_that_detects_little_proves_nothing() -> None:
    """Figures of an instrument whose own fp32 AP50 is below 50 points (or not recorded) prove no
    path: every path is "within a point" of a model that finds almost nothing."""
    weak = parse_evidence(json.dumps({"paths": {"bf16": {"ap_delta": 0.0, "ap50_delta": 0.1, "ratio": 1.4},
                                                "fast": {"ap_delta": 0.0, "ap50_delta": 0.0, "ratio": 1.2}},
                                      "reference": {"ap": 1.4, "ap50": 4.5}}))
    assert weak.paths and weak.figures("bf16") is None
    assert plan_path("auto", "cpu", cpu("avx512_bf16"), weak) == PathPlan(
        "fast", "bf16 and int8 not yet proven on the instrument (the instrument reaches AP50 4.5 only, "
                "below the 50 its figures need)")
    unrecorded = replace(weak, reference_ap50=None)
    assert unrecorded.figures("bf16") is None and "not recorded" in (unrecorded.weak or "")
    trained = replace(weak, reference_ap50=TRAINED)
    assert plan_path("auto", "cpu", cpu("avx512_bf16"), trained).path == "bf16"


def test_the_shipped_evidence_is_what_the_bench_recorded() -> None:
    """Every path the file records parses, with the instrument's own AP50 beside it."""
    data = json.loads(Path(path_evidence.EVIDENCE_FILE).read_text())
    shipped = path_evidence.shipped_evidence()
    assert set(shipped.paths) == set(data["paths"]) == {"fast", "bf16", "int8"}
    assert shipped.reference_ap50 == data["reference"]["ap50"]
    assert 0 <= data["reference"]["ap"] <= data["reference"]["ap50"] <= 100


class Loaded:
    device, model_id = "cpu", "x"

    def __init__(self, precision: str) -> None:
        self.precision = precision


@pytest.mark.parametrize(("name", "evidence", "says"), [
    ("amx", PROVEN, "model ready on cpu (bf16: this CPU has AMX) in "),
    ("avx512_bf16", UNPROVEN, "model ready on cpu (fast: bf16 and int8 not yet proven on the instrument) in "),
    ("avx2", PROVEN, "model ready on cpu (fast: this CPU has no native bf16; no VNNI) in "),
])
def test_the_ready_message_says_the_path_and_why(monkeypatch, on_a_cpu, name, evidence, says) -> None:
    monkeypatch.setattr(compute_path, "this_cpu", lambda: cpu(name))
    monkeypatch.setattr(compute_path, "shipped_evidence", lambda: evidence)
    events: list[tuple[str, str]] = []
    built: list[DetectorConfig] = []

    def factory(config: DetectorConfig) -> Loaded:
        built.append(config)
        return Loaded(compute_path.planned(config.precision, config.device))

    model = BatchDetector(DetectorConfig(device="cpu"), Ontology.from_names(["cat"]), factory=factory,
                          on_event=lambda kind, message: events.append((kind, message)))
    model.ensure_detector()
    assert events[-1][0] == "ready" and events[-1][1].startswith(says)


def test_a_chosen_path_is_named_without_a_reason(on_a_cpu) -> None:
    events: list[tuple[str, str]] = []
    model = BatchDetector(DetectorConfig(device="cpu", precision="int8"), Ontology.from_names(["cat"]),
                          factory=lambda config: Loaded("int8"), on_event=lambda k, m: events.append((k, m)))
    model.ensure_detector()
    assert events[-1][1].startswith("model ready on cpu (int8) in ")


@pytest.mark.parametrize("text", [
    "",
    "\x00\xff garbage",
    "flags\n",  # no colon
    "vmx flags\t: vnmi preemption_timer\nbugs\t\t: spectre_v1\n",  # the kernel's other "flags" lines
    "processor : 0\nFLAGS : AVX512_BF16 AVX512_VNNI\n",
    "flags\t\t:\n",
    "model name\t: flags: avx512_bf16 amx_bf16\n",  # a CPU named to fool the parser
])
def test_odd_cpuinfo_gives_no_unit_it_does_not_state(text: str) -> None:
    from autolabel_gui.detection.cpu_features import parse_cpuinfo

    features = parse_cpuinfo(text, "x86_64")
    stated = "FLAGS" in text
    assert (features.bf16_unit is not None) is stated and (features.vnni_unit is not None) is stated
