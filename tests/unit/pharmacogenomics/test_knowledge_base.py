"""Data-file integrity, CPIC reference values and the knowledge-base loader's validation."""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from pharmacogenomics_svc.knowledge_base import (
    KnowledgeBase,
    KnowledgeBaseError,
    default_knowledge_base,
    load_knowledge_base,
)

DATA_DIR = Path(__file__).resolve().parents[3] / "pharmacogenomics_svc" / "data"
CSV_FILES = ("allele_function.csv", "guidance.csv", "inhibitors.csv", "medications.csv")


def _rows(name: str, directory: Path = DATA_DIR) -> list[dict[str, str]]:
    with (directory / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_knowledge_base()


# --- integrity of the shipped files (read directly, not through the loader) ---------------------


@pytest.mark.parametrize("name", ["allele_function.csv", "guidance.csv", "inhibitors.csv"])
def test_every_row_names_its_source(name: str) -> None:
    rows = _rows(name)
    assert rows
    assert all(row["source"].strip() for row in rows)


def test_every_medication_names_its_guideline() -> None:
    assert all(row["guideline_source"].strip() for row in _rows("medications.csv"))


def test_guideline_rows_carry_a_pmid_and_label_rows_a_label_section() -> None:
    for row in _rows("guidance.csv"):
        if row["strength"] == "FDA label":
            assert row["source"].startswith("FDA label"), row["drug"]
        else:
            assert row["pmid"].isdigit(), row["drug"]


def test_every_guidance_drug_and_gene_is_in_medications() -> None:
    medications = {row["name"]: set(row["genes"].split(";")) for row in _rows("medications.csv")}
    for row in _rows("guidance.csv"):
        assert row["drug"] in medications, row["drug"]
        assert row["gene"] in medications[row["drug"]], row["drug"]
        if row["gene2"]:
            assert row["gene2"] in medications[row["drug"]], row["drug"]


def test_every_medication_has_guidance() -> None:
    drugs_with_rows = {row["drug"] for row in _rows("guidance.csv")}
    assert {row["name"] for row in _rows("medications.csv")} == drugs_with_rows


def test_every_referenced_phenotype_exists() -> None:
    rules = yaml.safe_load((DATA_DIR / "phenotype_rules.yaml").read_text(encoding="utf-8"))
    valid: dict[str, set[str]] = {}
    for gene, spec in rules["genes"].items():
        entries = spec.get("bands") or spec.get("pairs")
        valid[gene] = {entry["phenotype"] for entry in entries} | {"Indeterminate"}
    for marker, spec in rules["hla_markers"].items():
        valid[marker] = set(spec["results"])
    tokens = {"No Result", "Any"}
    for row in _rows("guidance.csv"):
        assert row["phenotype"] in valid[row["gene"]] | tokens, row
        if row["gene2"]:
            assert row["phenotype2"] in valid[row["gene2"]] | tokens, row


def test_required_drugs_are_supported(kb: KnowledgeBase) -> None:
    required = {
        "citalopram", "escitalopram", "sertraline", "paroxetine", "fluvoxamine", "fluoxetine",
        "venlafaxine", "vortioxetine", "desvenlafaxine", "amitriptyline", "nortriptyline",
        "clomipramine", "doxepin", "imipramine", "trimipramine", "desipramine", "atomoxetine",
        "carbamazepine", "oxcarbazepine", "phenytoin", "fosphenytoin", "aripiprazole",
        "brexpiprazole", "pimozide", "iloperidone",
    }  # fmt: skip
    assert required <= set(kb.medications)
    assert kb.medications["sertraline"].genes == ("CYP2C19", "CYP2B6")
    assert set(kb.medications["phenytoin"].genes) == {"CYP2C9", "HLA-B*15:02"}


# --- CPIC reference values, checked literally -------------------------------------------------


@pytest.mark.parametrize(
    ("gene", "allele", "function", "value"),
    [
        ("CYP2D6", "*1", "Normal function", 1.0),
        ("CYP2D6", "*2", "Normal function", 1.0),
        ("CYP2D6", "*3", "No function", 0.0),
        ("CYP2D6", "*4", "No function", 0.0),
        ("CYP2D6", "*5", "No function", 0.0),
        ("CYP2D6", "*6", "No function", 0.0),
        ("CYP2D6", "*9", "Decreased function", 0.25),
        ("CYP2D6", "*10", "Decreased function", 0.25),
        ("CYP2D6", "*17", "Decreased function", 0.5),
        ("CYP2D6", "*29", "Decreased function", 0.5),
        ("CYP2D6", "*41", "Decreased function", 0.25),
        ("CYP2D6", "*13", "No function", 0.0),
        ("CYP2D6", "*36", "No function", 0.0),
        ("CYP2D6", "*68", "No function", 0.0),
        ("CYP2C9", "*1", "Normal function", 1.0),
        ("CYP2C9", "*2", "Decreased function", 0.5),
        ("CYP2C9", "*3", "No function", 0.0),
        ("CYP2C9", "*5", "Decreased function", 0.5),
        ("CYP2C9", "*8", "Decreased function", 0.5),
        ("CYP2C9", "*11", "Decreased function", 0.5),
        ("CYP2C19", "*1", "Normal function", None),
        ("CYP2C19", "*2", "No function", None),
        ("CYP2C19", "*3", "No function", None),
        ("CYP2C19", "*9", "Decreased function", None),
        ("CYP2C19", "*17", "Increased function", None),
        ("CYP2B6", "*4", "Increased function", None),
        ("CYP2B6", "*6", "Decreased function", None),
    ],
)
def test_cpic_allele_values(
    kb: KnowledgeBase, gene: str, allele: str, function: str, value: float | None
) -> None:
    entry = kb.allele(gene, allele)
    assert entry is not None
    assert (entry.function, entry.activity_value) == (function, value)


def test_allele_tables_are_complete_not_a_sample(kb: KnowledgeBase) -> None:
    counts = {gene: len(alleles) for gene, alleles in kb.alleles.items()}
    assert counts["CYP2D6"] > 100
    assert counts["CYP2C9"] > 60
    assert counts["CYP2C19"] >= 30
    assert counts["CYP2B6"] >= 40


@pytest.mark.parametrize(
    ("drug", "enzyme", "strength"),
    [
        ("fluoxetine", "CYP2D6", "strong"),
        ("fluoxetine", "CYP2C19", "moderate"),
        ("paroxetine", "CYP2D6", "strong"),
        ("bupropion", "CYP2D6", "strong"),
        ("quinidine", "CYP2D6", "strong"),
        ("terbinafine", "CYP2D6", "strong"),
        ("duloxetine", "CYP2D6", "moderate"),
        ("fluvoxamine", "CYP2C19", "strong"),
        ("fluconazole", "CYP2C19", "strong"),
        ("ticlopidine", "CYP2C19", "strong"),
        ("omeprazole", "CYP2C19", "moderate"),
        ("esomeprazole", "CYP2C19", "moderate"),
    ],
)
def test_inhibitor_table(kb: KnowledgeBase, drug: str, enzyme: str, strength: str) -> None:
    found = {inh.enzyme: inh.strength for inh in kb.inhibitors_of(drug)}
    assert found[enzyme] == strength


# --- version ----------------------------------------------------------------------------------


def test_data_version_is_the_version_file_plus_a_content_hash(kb: KnowledgeBase) -> None:
    version = kb.data_version
    assert version.version == (DATA_DIR / "VERSION").read_text(encoding="utf-8").strip()
    per_file = dict(version.file_sha256)
    for name in ("VERSION", "phenotype_rules.yaml", *CSV_FILES):
        assert per_file[name] == hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest()
    assert len(version.sha256) == 64
    assert version.label == f"{version.version}+{version.sha256[:12]}"


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def test_any_edit_changes_the_hash(kb: KnowledgeBase, data_copy: Path) -> None:
    assert load_knowledge_base(data_copy).data_version.sha256 == kb.data_version.sha256
    with (data_copy / "inhibitors.csv").open("a", encoding="utf-8") as handle:
        handle.write('cimetidine,CYP2D6,weak,"test source",\n')
    changed = load_knowledge_base(data_copy).data_version
    assert changed.version == kb.data_version.version
    assert changed.sha256 != kb.data_version.sha256


# --- loader validation on corrupted copies ----------------------------------------------------


def _rewrite(directory: Path, name: str, rows: list[dict[str, str]]) -> None:
    with (directory / name).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_missing_source_is_rejected(data_copy: Path) -> None:
    rows = _rows("allele_function.csv", data_copy)
    rows[3]["source"] = ""
    _rewrite(data_copy, "allele_function.csv", rows)
    with pytest.raises(KnowledgeBaseError, match="source"):
        load_knowledge_base(data_copy)


def test_activity_value_contradicting_function_is_rejected(data_copy: Path) -> None:
    rows = _rows("allele_function.csv", data_copy)
    row = next(r for r in rows if r["gene"] == "CYP2D6" and r["allele"] == "*4")
    row["activity_value"] = "0.5"
    _rewrite(data_copy, "allele_function.csv", rows)
    with pytest.raises(KnowledgeBaseError, match="contradicts"):
        load_knowledge_base(data_copy)


def test_guidance_for_unknown_drug_is_rejected(data_copy: Path) -> None:
    rows = _rows("guidance.csv", data_copy)
    rows[0]["drug"] = "notadrug"
    _rewrite(data_copy, "guidance.csv", rows)
    with pytest.raises(KnowledgeBaseError, match=r"medications\.csv"):
        load_knowledge_base(data_copy)


def test_guidance_with_impossible_phenotype_is_rejected(data_copy: Path) -> None:
    rows = _rows("guidance.csv", data_copy)
    row = next(r for r in rows if r["gene"] == "CYP2D6")
    row["phenotype"] = "Rapid Metabolizer"  # CYP2D6 has no Rapid phenotype in CPIC
    _rewrite(data_copy, "guidance.csv", rows)
    with pytest.raises(KnowledgeBaseError, match="phenotype not valid"):
        load_knowledge_base(data_copy)


def test_duplicate_guidance_row_is_rejected(data_copy: Path) -> None:
    rows = _rows("guidance.csv", data_copy)
    rows.append(dict(rows[0]))
    _rewrite(data_copy, "guidance.csv", rows)
    with pytest.raises(KnowledgeBaseError, match="overlapping"):
        load_knowledge_base(data_copy)


def test_missing_file_is_rejected(data_copy: Path) -> None:
    (data_copy / "VERSION").unlink()
    with pytest.raises(KnowledgeBaseError, match="VERSION"):
        load_knowledge_base(data_copy)
