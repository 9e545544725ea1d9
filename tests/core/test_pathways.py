"""Consistency of the shipped data, and clear errors for bad pathway and directory files."""

from pathlib import Path

import pytest
import yaml

from models.catalog import template_names
from models.directory import load_directory
from models.errors import BadInput
from models.pathway import load_pathway_file
from models.settings import PROJECT_ROOT

DIRECTORY = PROJECT_ROOT / "directory" / "bengkulu-tengah.yaml"
PATHWAYS = sorted((PROJECT_ROOT / "pathways").glob("*.yaml"))
DOMAIN_AGENCIES = {
    "imigrasi",
    "polres-ppa",
    "uptd-ppa",
    "dinsos",
    "dinkes",
    "psikolog",
    "lbh",
    "lpsk",
    "bp3mi",
    "disnaker",
    "iom",
    "ngo",
    "gugus-tugas",
}


def test_sample_directory_has_the_thirteen_agencies():
    directory = load_directory(DIRECTORY)
    assert {a.slug for a in directory.agencies} == DOMAIN_AGENCIES


@pytest.mark.parametrize("path", PATHWAYS, ids=lambda p: p.stem)
def test_every_shipped_pathway_validates(path):
    pathway = load_pathway_file(path, load_directory(DIRECTORY), template_names())
    assert pathway.id == path.stem
    assert all(step.basis for step in pathway.steps)


def test_the_four_domain_pathways_ship():
    assert {"tppo-dewasa", "tppo-anak", "tppo-wna", "pmi-pulang"} <= {p.stem for p in PATHWAYS}


def test_adult_pathway_runs_shelter_and_health_in_parallel_and_repeats_follow_ups():
    pathway = load_pathway_file(
        PROJECT_ROOT / "pathways" / "tppo-dewasa.yaml", load_directory(DIRECTORY), template_names()
    )
    assert pathway.step("kesehatan").depends_on == ["identifikasi"]
    assert pathway.step("rumah-aman").depends_on == ["identifikasi"]
    assert set(pathway.step("psikososial").depends_on) == {"kesehatan", "rumah-aman"}
    assert pathway.step("pemantauan").repeat == ["P3M", "P6M", "P12M"]


def test_every_child_step_is_urgent():
    pathway = load_pathway_file(
        PROJECT_ROOT / "pathways" / "tppo-anak.yaml", load_directory(DIRECTORY), template_names()
    )
    assert pathway.step("perlindungan-anak").deadline == "PT24H"
    assert all(s.escalate_after in ("PT6H", "P1D", "P2D", "P3D", "P7D") for s in pathway.steps)


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _base() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "pathways" / "tppo-wna.yaml").read_text())


def _load(path: Path):
    return load_pathway_file(path, load_directory(DIRECTORY), template_names())


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["steps"][0].update(depends_on=["penutupan"]), "cycle"),
        (
            lambda d: d["steps"][2].update(depends_on=["nowhere"]),
            "step 'rumah-aman': depends_on names unknown step 'nowhere'",
        ),
        (
            lambda d: d["steps"][2].update(agency="polisi-hutan"),
            "step 'rumah-aman': unknown agency 'polisi-hutan'",
        ),
        (
            lambda d: d["steps"][2].update(when="moon_is_full"),
            "step 'rumah-aman': unknown condition 'moon_is_full'",
        ),
        (
            lambda d: d["steps"][2].update(template="no-such-template"),
            "step 'rumah-aman': unknown template 'no-such-template'",
        ),
        (
            lambda d: d["steps"][2].update(colour="red"),
            "step 'rumah-aman': colour: Extra inputs are not permitted",
        ),
        (
            lambda d: d["steps"][2].update(deadline="tomorrow"),
            "step 'rumah-aman': deadline: 'tomorrow' is not a deadline",
        ),
        (
            lambda d: d["steps"][2].update(escalate_to="nobody"),
            "step 'rumah-aman': unknown agency 'nobody'",
        ),
        (
            lambda d: d["steps"].append(dict(d["steps"][0])),
            "step key 'identifikasi-imigrasi' is used twice",
        ),
    ],
)
def test_bad_pathways_name_the_file_the_step_and_the_problem(tmp_path, change, expected):
    data = _base()
    change(data)
    with pytest.raises(BadInput) as info:
        _load(_write(tmp_path, data))
    message = str(info.value)
    assert "broken.yaml" in message
    assert expected in message


def test_unparseable_pathway_file(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("id: [unclosed")
    with pytest.raises(BadInput, match="x.yaml: not valid YAML"):
        _load(path)


def _directory(tmp_path: Path, agencies: list[dict]) -> Path:
    path = tmp_path / "agencies.yaml"
    path.write_text(yaml.safe_dump({"district": "Test", "agencies": agencies}))
    return path


@pytest.mark.parametrize(
    ("agencies", "expected"),
    [
        (
            [{"slug": "a", "name": "A", "kind": "x"}, {"slug": "a", "name": "B", "kind": "x"}],
            "agency 'a' is listed twice",
        ),
        (
            [{"slug": "a", "name": "A", "kind": "x", "escalation_target": "b"}],
            "agency 'a' escalates to unknown agency 'b'",
        ),
        (
            [{"slug": "a", "name": "A", "kind": "x", "timezone": "Asia/Bengkulu"}],
            "agency 'a': timezone: Value error, unknown time zone 'Asia/Bengkulu'",
        ),
        ([{"slug": "A B", "name": "A", "kind": "x"}], "agency 'A B': slug"),
    ],
)
def test_bad_directories_name_the_file_and_the_agency(tmp_path, agencies, expected):
    with pytest.raises(BadInput) as info:
        load_directory(_directory(tmp_path, agencies))
    assert "agencies.yaml" in str(info.value)
    assert expected in str(info.value)
