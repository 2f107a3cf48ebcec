"""Genotype -> phenotype translation against CPIC rules written out independently here."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest

from pharmacogenomics_svc.genotype import GenotypeError
from pharmacogenomics_svc.knowledge_base import KnowledgeBase, default_knowledge_base
from pharmacogenomics_svc.phenotype import phenotype_for, phenotype_from_activity_score

DATA_DIR = Path(__file__).resolve().parents[3] / "pharmacogenomics_svc" / "data"

UM, RM, NM = "Ultrarapid Metabolizer", "Rapid Metabolizer", "Normal Metabolizer"
LIM, IM = "Likely Intermediate Metabolizer", "Intermediate Metabolizer"
LPM, PM = "Likely Poor Metabolizer", "Poor Metabolizer"
IND = "Indeterminate"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_knowledge_base()


def _allele_table(gene: str) -> dict[str, tuple[str, float | None]]:
    """Reads the allele table straight from the CSV (not through the loader under test)."""
    with (DATA_DIR / "allele_function.csv").open(encoding="utf-8", newline="") as handle:
        return {
            row["allele"]: (
                row["function"],
                float(row["activity_value"]) if row["activity_value"] else None,
            )
            for row in csv.DictReader(handle)
            if row["gene"] == gene
        }


# --- CPIC rules, restated from the guidelines (not from the code or the YAML) -----------------


def cpic_cyp2c19(first: str, second: str) -> str:
    """CPIC CYP2C19 (Lee 2022 PMID 35034351 / Bousman 2023 PMID 37032427) function-pair rule."""
    functions = [first, second]
    if any(f in ("Uncertain function", "Unknown function") for f in functions):
        return IND
    inc = functions.count("Increased function")
    nor = functions.count("Normal function")
    dec = functions.count("Decreased function")
    no = functions.count("No function")
    if inc == 2:
        return UM
    if inc == 1 and nor == 1:
        return RM
    if nor == 2:
        return NM
    if no == 2:
        return PM
    if no == 1 and dec == 1:
        return LPM
    if no == 1:
        return IM  # no function with normal or increased function
    assert dec >= 1
    return LIM  # decreased with normal, increased or decreased function


def cpic_cyp2b6(first: str, second: str) -> str:
    """CPIC CYP2B6 (Desta 2019 PMID 31006110) function-pair rule."""
    functions = [first, second]
    if any(f in ("Uncertain function", "Unknown function") for f in functions):
        return IND
    inc = functions.count("Increased function")
    nor = functions.count("Normal function")
    low = functions.count("Decreased function") + functions.count("No function")
    if inc == 2:
        return UM
    if inc == 1 and nor == 1:
        return RM
    if nor == 2:
        return NM
    if low == 2:
        return PM
    return IM


def cpic_cyp2d6_band(score: float) -> str:
    """Caudle 2020 (PMID 31647186): 0 PM; 0 < AS < 1.25 IM; 1.25-2.25 NM; > 2.25 UM."""
    if score == 0:
        return PM
    if score < 1.25:
        return IM
    if score <= 2.25:
        return NM
    return UM


def cpic_cyp2c9_band(score: float) -> str:
    """Karnes 2021 (PMID 32779747): 2 NM; 1 and 1.5 IM; 0 and 0.5 PM."""
    if score >= 2:
        return NM
    if score >= 1:
        return IM
    return PM


# --- exhaustive checks over every allele pair in the data file ----------------------------------


def test_every_cyp2c19_diplotype_follows_the_cpic_rule(kb: KnowledgeBase) -> None:
    table = _allele_table("CYP2C19")
    assert len(table) >= 30
    for a, b in itertools.combinations_with_replacement(sorted(table), 2):
        expected = cpic_cyp2c19(table[a][0], table[b][0])
        result = phenotype_for("CYP2C19", f"{a}/{b}", kb)
        assert result.phenotype == expected, f"{a}/{b}"
        assert result.activity_score is None


def test_every_cyp2b6_diplotype_follows_the_cpic_rule(kb: KnowledgeBase) -> None:
    table = _allele_table("CYP2B6")
    for a, b in itertools.combinations_with_replacement(sorted(table), 2):
        expected = cpic_cyp2b6(table[a][0], table[b][0])
        assert phenotype_for("CYP2B6", f"{a}/{b}", kb).phenotype == expected, f"{a}/{b}"


@pytest.mark.parametrize(
    ("gene", "band"), [("CYP2D6", cpic_cyp2d6_band), ("CYP2C9", cpic_cyp2c9_band)]
)
def test_every_activity_score_diplotype_follows_the_cpic_bands(
    kb: KnowledgeBase, gene: str, band: object
) -> None:
    table = _allele_table(gene)
    assert callable(band)
    for a, b in itertools.combinations_with_replacement(sorted(table), 2):
        value_a, value_b = table[a][1], table[b][1]
        result = phenotype_for(gene, f"{a}/{b}", kb)
        if value_a is None or value_b is None:
            assert result.phenotype == IND, f"{a}/{b}"
            assert result.activity_score is None
            continue
        score = value_a + value_b
        assert result.activity_score == pytest.approx(score), f"{a}/{b}"
        assert result.phenotype == band(score), f"{a}/{b}"


# --- canonical diplotypes with literal expectations from the guidelines --------------------------


@pytest.mark.parametrize(
    ("diplotype", "expected"),
    [
        ("*1/*1", NM),
        ("*1/*17", RM),
        ("*17/*17", UM),
        ("*1/*2", IM),
        ("*1/*3", IM),
        ("*2/*17", IM),
        ("*2/*2", PM),
        ("*2/*3", PM),
        ("*3/*3", PM),
        ("*1/*9", LIM),  # *9 decreased function
        ("*9/*17", LIM),
        ("*9/*9", LIM),
        ("*2/*9", LPM),
        ("*1/*12", IND),  # *12 uncertain function
    ],
)
def test_cyp2c19_canonical(kb: KnowledgeBase, diplotype: str, expected: str) -> None:
    assert phenotype_for("CYP2C19", diplotype, kb).phenotype == expected


@pytest.mark.parametrize(
    ("diplotype", "score", "expected"),
    [
        ("*1/*1", 2.0, NM),
        ("*1/*4", 1.0, IM),
        ("*4/*4", 0.0, PM),
        ("*1x2/*1", 3.0, UM),
        ("*1/*10", 1.25, NM),
        ("*10/*10", 0.5, IM),
        ("*4/*10", 0.25, IM),
        # CPIC lowered *41 (and *9) from 0.5 to 0.25 on 2022-11-08: *41/*41 is 0.5, not 1.0.
        ("*41/*41", 0.5, IM),
        ("*5/*5", 0.0, PM),
        ("*1/*5", 1.0, IM),
        ("*4xN/*1", 1.0, IM),
        # With *41 = 0.25 this is 2.25 (Normal); with the pre-2022 value 0.5 it was 2.5 (UM).
        ("*2x2/*41", 2.25, NM),
        ("*1/*17", 1.5, NM),
        ("*17/*17", 1.0, IM),
        ("*2x3/*4", 3.0, UM),
        ("*4x2/*4", 0.0, PM),
        ("*10x2/*4", 0.5, IM),
        ("*36+*10/*4", 0.25, IM),
        ("*13/*1", 1.0, IM),
        ("*36/*36", 0.0, PM),
        ("*68/*4", 0.0, PM),
    ],
)
def test_cyp2d6_canonical(kb: KnowledgeBase, diplotype: str, score: float, expected: str) -> None:
    result = phenotype_for("CYP2D6", diplotype, kb)
    assert result.activity_score == pytest.approx(score)
    assert result.phenotype == expected


@pytest.mark.parametrize("allele", ["*5", "*13", "*36", "*68"])
def test_cyp2d6_deletion_and_hybrids_have_no_function(kb: KnowledgeBase, allele: str) -> None:
    entry = kb.allele("CYP2D6", allele)
    assert entry is not None
    assert (entry.function, entry.activity_value) == ("No function", 0.0)


@pytest.mark.parametrize(
    ("diplotype", "score", "expected"),
    [
        ("*1/*1", 2.0, NM),
        ("*1/*2", 1.5, IM),
        ("*1/*3", 1.0, IM),
        ("*2/*2", 1.0, IM),
        ("*2/*3", 0.5, PM),
        ("*3/*3", 0.0, PM),
    ],
)
def test_cyp2c9_canonical(kb: KnowledgeBase, diplotype: str, score: float, expected: str) -> None:
    result = phenotype_for("CYP2C9", diplotype, kb)
    assert result.activity_score == pytest.approx(score)
    assert result.phenotype == expected


@pytest.mark.parametrize(
    ("diplotype", "expected"),
    [("*1/*1", NM), ("*1/*6", IM), ("*6/*6", PM), ("*1/*4", RM), ("*4/*4", UM), ("*6/*18", PM)],
)
def test_cyp2b6_canonical(kb: KnowledgeBase, diplotype: str, expected: str) -> None:
    assert phenotype_for("CYP2B6", diplotype, kb).phenotype == expected


# --- copy number with an unreported count ------------------------------------------------------


def test_unknown_copy_number_is_a_minimum_and_never_guessed(kb: KnowledgeBase) -> None:
    ultra = phenotype_for("CYP2D6", "*1xN/*1", kb)
    assert (ultra.phenotype, ultra.activity_score, ultra.activity_score_is_minimum) == (
        UM,
        3.0,
        True,
    )
    # 2 copies -> 2.0 (Normal), 3 copies -> 3.0 (Ultrarapid): ambiguous, so Indeterminate.
    ambiguous = phenotype_for("CYP2D6", "*1xN/*4", kb)
    assert ambiguous.phenotype == IND
    assert "xN" in ambiguous.explanation
    no_function = phenotype_for("CYP2D6", "*4xN/*4", kb)
    assert (no_function.phenotype, no_function.activity_score) == (PM, 0.0)


def test_copy_number_on_a_gene_without_cpic_copy_number_rules(kb: KnowledgeBase) -> None:
    result = phenotype_for("CYP2C19", "*17x2/*1", kb)
    assert result.phenotype == IND
    assert "CYP2C19" in result.explanation


# --- unknown / uncertain alleles --------------------------------------------------------------


def test_unknown_allele_is_indeterminate_and_named(kb: KnowledgeBase) -> None:
    result = phenotype_for("CYP2D6", "*1/*999", kb)
    assert result.phenotype == IND
    assert result.activity_score is None
    assert "*999" in result.explanation


def test_uncertain_function_allele_is_indeterminate(kb: KnowledgeBase) -> None:
    table = _allele_table("CYP2D6")
    uncertain = next(a for a, (f, _) in table.items() if f == "Uncertain function")
    result = phenotype_for("CYP2D6", f"*1/{uncertain}", kb)
    assert result.phenotype == IND
    assert uncertain in result.explanation


def test_bad_syntax_raises(kb: KnowledgeBase) -> None:
    with pytest.raises(GenotypeError, match=r"CYP2D6"):
        phenotype_for("CYP2D6", "*1//*4", kb)


def test_gene_outside_the_knowledge_base_is_indeterminate(kb: KnowledgeBase) -> None:
    result = phenotype_for("DPYD", "*1/*2", kb)
    assert result.phenotype == IND
    assert "DPYD" in result.explanation


# --- activity score bands, HLA ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "expected"),
    [(0, PM), (0.25, IM), (1.0, IM), (1.25, NM), (2.25, NM), (2.5, UM), (6.0, UM)],
)
def test_cyp2d6_band_edges(kb: KnowledgeBase, score: float, expected: str) -> None:
    assert phenotype_from_activity_score("CYP2D6", score, kb) == expected


def test_cyp2c9_score_between_bands_is_indeterminate(kb: KnowledgeBase) -> None:
    assert phenotype_from_activity_score("CYP2C9", 0.75, kb) == IND
    assert phenotype_from_activity_score("CYP2C9", 1.5, kb) == IM


def test_activity_score_rejects_function_pair_gene_and_bad_scores(kb: KnowledgeBase) -> None:
    with pytest.raises(ValueError, match="activity score"):
        phenotype_from_activity_score("CYP2C19", 1.0, kb)
    with pytest.raises(ValueError, match="finite"):
        phenotype_from_activity_score("CYP2D6", -1.0, kb)


@pytest.mark.parametrize("marker", ["HLA-B*15:02", "HLA-A*31:01"])
def test_hla_carrier_status(kb: KnowledgeBase, marker: str) -> None:
    assert phenotype_for(marker, "positive", kb).phenotype == "Positive"
    assert phenotype_for(marker, "negative", kb).phenotype == "Negative"


def test_proto_documents_xn_as_the_service_reads_it(kb: KnowledgeBase) -> None:
    """common.proto's GeneDiplotype comment and the service agree: xN is two or more copies."""
    proto = (DATA_DIR.parents[1] / "protos/novamind/common/v1/common.proto").read_text()
    block = proto[proto.index("message GeneDiplotype") : proto.index("string diplotype = 2;")]
    comment = " ".join(line.strip().lstrip("/").strip() for line in block.splitlines())
    assert "xN" in comment and "two or more copies" in comment
    assert "three or more" not in comment
    # The examples the comment gives are what the service answers.
    assert '*4xN/*1" Intermediate' in comment
    assert phenotype_for("CYP2D6", "*4xN/*1", kb).phenotype == IM
    assert '*1xN/*1" Ultrarapid' in comment
    assert phenotype_for("CYP2D6", "*1xN/*1", kb).phenotype == UM
    assert '*1xN/*4" Indeterminate' in comment
    two_copies_or_more = phenotype_for("CYP2D6", "*1xN/*4", kb)
    assert (two_copies_or_more.phenotype, two_copies_or_more.activity_score) == (IND, 2.0)
    assert two_copies_or_more.activity_score_is_minimum
