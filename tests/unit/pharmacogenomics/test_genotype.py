"""Diplotype parsing, HLA result parsing and rsID -> star-allele translation."""

from __future__ import annotations

import pytest

from pharmacogenomics_svc.genotype import (
    GenotypeError,
    parse_diplotype,
    parse_hla_result,
    translate_rsids,
)


def _components(text: str) -> list[list[tuple[str, int, bool]]]:
    diplotype = parse_diplotype("CYP2D6", text)
    return [
        [(c.allele, c.copies, c.copies_exact) for c in h.components] for h in diplotype.haplotypes
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("*1/*4", [[("*1", 1, True)], [("*4", 1, True)]]),
        ("*1x2/*4", [[("*1", 2, True)], [("*4", 1, True)]]),
        ("*2xN/*1", [[("*2", 2, False)], [("*1", 1, True)]]),
        ("*4XN/*1", [[("*4", 2, False)], [("*1", 1, True)]]),
        ("*1x>=3/*1", [[("*1", 3, False)], [("*1", 1, True)]]),
        ("*1x≥3/*1", [[("*1", 3, False)], [("*1", 1, True)]]),
        ("  *1 x2 /  *41 ", [[("*1", 2, True)], [("*41", 1, True)]]),
        ("*36+*10/*1", [[("*36", 1, True), ("*10", 1, True)], [("*1", 1, True)]]),
        ("*001/*4", [[("*1", 1, True)], [("*4", 1, True)]]),
    ],
)
def test_parse_diplotype_accepts_star_notation(
    text: str, expected: list[list[tuple[str, int, bool]]]
) -> None:
    assert _components(text) == expected


def test_canonical_text_round_trips() -> None:
    assert parse_diplotype("CYP2D6", " *1 x2/ *4 ").text == "*1x2/*4"
    assert parse_diplotype("CYP2D6", "*2xn/*1").text == "*2xN/*1"
    assert parse_diplotype("CYP2C19", "*2/*17").alleles == ("*2", "*17")


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("*1//*4", "//"),
        ("1/4", "1"),
        ("*1/*4/*2", "*2"),
        ("*abc", "*abc"),
        ("*1/", "/"),
        ("*1", "*1"),
        ("*1x1/*4", "*1x1"),
        ("*1+/*4", "*1+"),
        ("*4/*1xZ", "*1xZ"),
    ],
)
def test_bad_syntax_names_gene_token_and_rule(text: str, token: str) -> None:
    with pytest.raises(GenotypeError) as caught:
        parse_diplotype("CYP2D6", text)
    error = caught.value
    assert error.field == "genotype.diplotypes[CYP2D6]"
    assert error.allele == token
    assert error.rule
    message = str(error)
    assert "CYP2D6" in message
    assert f"'{token}'" in message
    assert error.rule in message


def test_empty_diplotype_is_rejected() -> None:
    with pytest.raises(GenotypeError, match=r"genotype.diplotypes\[CYP2C19\].*empty"):
        parse_diplotype("CYP2C19", "   ")


def test_free_text_token_is_not_echoed() -> None:
    # Something that is clearly not allele notation (e.g. pasted free text) is withheld.
    with pytest.raises(GenotypeError) as caught:
        parse_diplotype("CYP2D6", "John Smith 1970-01-01/*1")
    assert "John" not in str(caught.value)
    assert "1970" not in str(caught.value)


def test_invalid_gene_symbol_is_not_echoed() -> None:
    with pytest.raises(GenotypeError) as caught:
        parse_diplotype("patient name", "*1/*1")
    assert "patient" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("positive", "Positive"),
        (" Negative ", "Negative"),
        ("NOT DETECTED", "Negative"),
        ("carrier", "Positive"),
    ],
)
def test_parse_hla_result(text: str, expected: str) -> None:
    assert parse_hla_result("HLA-B*15:02", text) == expected


def test_parse_hla_result_rejects_other_text_without_echo() -> None:
    with pytest.raises(GenotypeError) as caught:
        parse_hla_result("HLA-B*15:02", "maybe-xyz")
    assert caught.value.field == "genotype.hla[HLA-B*15:02]"
    assert "maybe-xyz" not in str(caught.value)


# ----------------------------------------------------------------------------- rsID translation

_CYP2C19_REFERENCE = {"rs4244285": "G/G", "rs4986893": "G/G", "rs12248560": "C/C"}
_CYP2C9_REFERENCE = {"rs1799853": "C/C", "rs1057910": "A/A"}


def _cyp2c19(**changes: str) -> dict[str, str]:
    return {**_CYP2C19_REFERENCE, **changes}


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        (_cyp2c19(), "*1/*1"),
        (_cyp2c19(rs4244285="G/A"), "*1/*2"),
        (_cyp2c19(rs4244285="A/A"), "*2/*2"),
        (_cyp2c19(rs4986893="AG"), "*1/*3"),
        (_cyp2c19(rs12248560="C|T"), "*1/*17"),
        (_cyp2c19(rs12248560="T/T"), "*17/*17"),
        # Compound heterozygotes: different variants are assumed to be in trans.
        (_cyp2c19(rs4244285="G/A", rs12248560="C/T"), "*2/*17"),
        (_cyp2c19(rs4244285="A/G", rs4986893="G/A"), "*2/*3"),
    ],
)
def test_translate_cyp2c19(calls: dict[str, str], expected: str) -> None:
    assert translate_rsids(calls)["CYP2C19"].text == expected


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        (_CYP2C9_REFERENCE, "*1/*1"),
        ({"rs1799853": "C/T", "rs1057910": "A/A"}, "*1/*2"),
        ({"rs1799853": "C/C", "rs1057910": "C/C"}, "*3/*3"),
        ({"rs1799853": "T/C", "rs1057910": "A/C"}, "*2/*3"),
        ({"rs1799853": "T/T", "rs1057910": "A/A"}, "*2/*2"),
    ],
)
def test_translate_cyp2c9(calls: dict[str, str], expected: str) -> None:
    assert translate_rsids(calls)["CYP2C9"].text == expected


def test_translate_both_genes_at_once() -> None:
    calls = {**_cyp2c19(rs4244285="A/A"), "rs1799853": "C/T", "rs1057910": "A/A"}
    result = translate_rsids(calls)
    assert {gene: d.text for gene, d in result.items()} == {"CYP2C19": "*2/*2", "CYP2C9": "*1/*2"}


def test_base_outside_ref_and_alt_names_the_rsid_without_echoing_the_call() -> None:
    with pytest.raises(GenotypeError) as caught:
        translate_rsids(_cyp2c19(rs4244285="G/C"))
    error = caught.value
    assert error.field == "genotype.rsids[rs4244285]"
    assert "rs4244285" in str(error)
    assert "G/C" not in str(error)


@pytest.mark.parametrize("call", ["G", "G/A/A", "GAT", "", "N/N"])
def test_malformed_call_is_rejected(call: str) -> None:
    with pytest.raises(GenotypeError, match="rs4244285"):
        translate_rsids(_cyp2c19(rs4244285=call))


def test_missing_defining_rsid_is_an_error_not_reference() -> None:
    with pytest.raises(GenotypeError) as caught:
        translate_rsids({"rs4244285": "G/A", "rs12248560": "C/C"})
    assert caught.value.field == "genotype.rsids[rs4986893]"


def test_unknown_rsid_is_rejected() -> None:
    with pytest.raises(GenotypeError, match="rs3892097"):
        translate_rsids({"rs3892097": "C/T"})


def test_more_than_two_variant_alleles_cannot_be_phased() -> None:
    with pytest.raises(GenotypeError, match="phase"):
        translate_rsids(_cyp2c19(rs4244285="A/A", rs12248560="C/T"))
