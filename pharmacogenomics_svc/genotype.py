"""Parses star-allele diplotypes (with copy number) and translates rsID calls to diplotypes.

Syntax accepted by :func:`parse_diplotype` (whitespace anywhere is ignored):

* two haplotypes separated by exactly one ``/``: ``*1/*4``
* a haplotype is one or more star alleles joined by ``+`` (tandem arrangements such as
  ``*36+*10``)
* a star allele is ``*`` followed by digits, optionally with a copy number: ``*1x2``,
  ``*2x3``, ``*4xN`` (copy number not reported; counts as *at least* two copies), ``*1x>=3``
  or ``*1x≥3`` (at least three copies)

Whether a gene may carry copy numbers or tandems is a knowledge-base question answered in
``phenotype.py`` (CYP2D6 only); this module only checks syntax.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

_LOGGER = logging.getLogger(__name__)

_GENE_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)?(?:\*[0-9]{2}:[0-9]{2})?$")
_STAR_ALLELE = re.compile(r"^\*(?P<number>[0-9]+)(?:[xX](?P<copies>[0-9]+|[Nn]|(?:>=|≥)[0-9]+))?$")
# Tokens are echoed in error messages so a caller can see what was wrong; anything that does
# not look like allele notation is withheld in case free text (e.g. a name) was pasted in.
_ECHOABLE_TOKEN = re.compile(
    r"^(?:\*[A-Za-z0-9*:.+/>=≥]{0,15}|[0-9/+*xXnN]{1,16}|rs[0-9]{1,12})$", re.IGNORECASE
)
_MAX_COPIES = 10


class GenotypeError(ValueError):
    """A genotype input violates a syntax or consistency rule.

    ``field`` names the request field (e.g. ``genotype.diplotypes[CYP2D6]``), ``rule`` the
    violated rule and ``allele`` the offending allele token (or rsID) - never a patient value.
    """

    def __init__(self, field: str, rule: str, allele: str = "", gene: str = "") -> None:
        self.field = field
        self.rule = rule
        self.allele = _echoable(allele) if allele else ""
        self.gene = gene
        parts = [f"{field}: {rule}"]
        if gene:
            parts.append(f"gene {gene}")
        if allele:
            parts.append(f"offending token '{self.allele}'")
        super().__init__("; ".join(parts))


@dataclass(frozen=True)
class AlleleCopy:
    """One star allele within a haplotype and how many copies of it are present."""

    allele: str  # e.g. "*1"
    copies: int = 1  # exact count, or the minimum when copies_exact is False
    copies_exact: bool = True

    @property
    def text(self) -> str:
        if self.copies == 1 and self.copies_exact:
            return self.allele
        if not self.copies_exact:
            return f"{self.allele}xN" if self.copies == 2 else f"{self.allele}x>={self.copies}"
        return f"{self.allele}x{self.copies}"


@dataclass(frozen=True)
class Haplotype:
    components: tuple[AlleleCopy, ...]

    @property
    def text(self) -> str:
        return "+".join(c.text for c in self.components)

    @property
    def is_simple(self) -> bool:
        """A single allele, single copy: the only form non-CYP2D6 tables define."""
        return len(self.components) == 1 and self.components[0].copies == 1


@dataclass(frozen=True)
class Diplotype:
    gene: str
    haplotypes: tuple[Haplotype, Haplotype]

    @property
    def text(self) -> str:
        return "/".join(h.text for h in self.haplotypes)

    @property
    def alleles(self) -> tuple[str, ...]:
        """Every star allele named in the diplotype, in order of appearance."""
        return tuple(c.allele for h in self.haplotypes for c in h.components)


def diplotype_field(gene: str) -> str:
    return f"genotype.diplotypes[{gene}]"


def parse_diplotype(gene: str, text: str) -> Diplotype:
    """Parses ``text`` (e.g. ``"*1x2/*4"``) as a diplotype of ``gene``.

    Raises GenotypeError naming the gene, the offending token and the rule on bad syntax.
    """
    gene_name = _checked_gene(gene)
    field = diplotype_field(gene_name)
    compact = "".join(text.split())
    if not compact:
        raise GenotypeError(field, "diplotype is empty", gene=gene_name)
    parts = compact.split("/")
    if any(not part for part in parts):
        raise GenotypeError(
            field,
            "each '/' must separate two non-empty haplotypes (no leading, trailing or doubled '/')",
            allele=_empty_part_token(compact),
            gene=gene_name,
        )
    haplotypes = [_parse_haplotype(part, field, gene_name) for part in parts]
    if len(haplotypes) != 2:
        offending = parts[2] if len(parts) > 2 else parts[0]
        raise GenotypeError(
            field,
            f"a diplotype has exactly two haplotypes separated by one '/', found {len(parts)}",
            allele=offending,
            gene=gene_name,
        )
    return Diplotype(gene_name, (haplotypes[0], haplotypes[1]))


def _checked_gene(gene: str) -> str:
    name = gene.strip()
    if not _GENE_NAME.match(name):
        raise GenotypeError("genotype.diplotypes", "gene name is not a recognised gene symbol")
    return name


def _empty_part_token(compact: str) -> str:
    if "//" in compact:
        return "//"
    return "/"


def _parse_haplotype(part: str, field: str, gene: str) -> Haplotype:
    tokens = part.split("+")
    if any(not token for token in tokens):
        raise GenotypeError(
            field, "'+' must join two star alleles (tandem arrangement)", allele=part, gene=gene
        )
    return Haplotype(tuple(_parse_allele(token, field, gene) for token in tokens))


def _parse_allele(token: str, field: str, gene: str) -> AlleleCopy:
    match = _STAR_ALLELE.match(token)
    if match is None:
        raise GenotypeError(
            field,
            "a star allele is '*' followed by a number, optionally with a copy number "
            "('x2', 'x3', 'xN')",
            allele=token,
            gene=gene,
        )
    allele = f"*{int(match['number'])}"
    copies_text = match["copies"]
    if copies_text is None:
        return AlleleCopy(allele)
    if copies_text in ("N", "n"):
        # CPIC writes "xN" when the number of copies was not determined: at least two.
        return AlleleCopy(allele, copies=2, copies_exact=False)
    at_least = not copies_text[0].isdigit()
    copies = int(copies_text.lstrip(">=≥"))
    if copies < 2 or copies > _MAX_COPIES:
        raise GenotypeError(
            field,
            f"copy number must be between 2 and {_MAX_COPIES}",
            allele=token,
            gene=gene,
        )
    return AlleleCopy(allele, copies=copies, copies_exact=not at_least)


def _echoable(token: str) -> str:
    return token if _ECHOABLE_TOKEN.match(token) else "<withheld: not allele notation>"


# ----------------------------------------------------------------------------- rsID translation


@dataclass(frozen=True)
class RsidVariant:
    """A single-nucleotide variant that defines a star allele (alleles on the GRCh38 + strand)."""

    rsid: str
    gene: str
    star_allele: str
    ref: str
    alt: str
    hgvs: str


# CYP2C19 and CYP2C9 both lie on the forward strand of chromosome 10, so the coding-sequence
# change and the genomic (plus-strand) change name the same bases.
RSID_VARIANTS: tuple[RsidVariant, ...] = (
    RsidVariant("rs4244285", "CYP2C19", "*2", "G", "A", "c.681G>A"),
    RsidVariant("rs4986893", "CYP2C19", "*3", "G", "A", "c.636G>A"),
    RsidVariant("rs12248560", "CYP2C19", "*17", "C", "T", "c.-806C>T"),
    RsidVariant("rs1799853", "CYP2C9", "*2", "C", "T", "c.430C>T"),
    RsidVariant("rs1057910", "CYP2C9", "*3", "A", "C", "c.1075A>C"),
)
REFERENCE_ALLELE = "*1"

_CALL_SEPARATORS = re.compile(r"[/|\s]+")


def rsid_field(rsid: str) -> str:
    return f"genotype.rsids[{rsid}]"


def translate_rsids(calls: Mapping[str, str]) -> dict[str, Diplotype]:
    """Translates rsID genotype calls (e.g. ``{"rs4244285": "G/A"}``) into star diplotypes.

    Assumptions and limits (also in data/README.md): only the variants in RSID_VARIANTS are
    considered, so an allele defined by any other variant is reported as ``*1``; every defining
    rsID of a gene must be called (a missing one would silently become ``*1``); two different
    heterozygous variants are assumed to lie in trans (one per haplotype); more than two variant
    alleles in one gene cannot be placed on two haplotypes without phase and are rejected.
    Calls are bases on the GRCh38 forward strand, written ``G/A``, ``G|A`` or ``GA``.
    """
    by_rsid = {variant.rsid: variant for variant in RSID_VARIANTS}
    alt_counts: dict[str, dict[str, int]] = {}
    for raw_rsid, call in calls.items():
        rsid = raw_rsid.strip().lower()
        variant = by_rsid.get(rsid)
        if variant is None:
            raise GenotypeError(
                "genotype.rsids",
                "rsID is not in the translation table (CYP2C19 *2/*3/*17, CYP2C9 *2/*3)",
                allele=raw_rsid.strip(),
            )
        count = _alt_allele_count(variant, call)
        alt_counts.setdefault(variant.gene, {})[rsid] = count
    diplotypes: dict[str, Diplotype] = {}
    for gene, counts in alt_counts.items():
        required = [v for v in RSID_VARIANTS if v.gene == gene]
        missing = [v.rsid for v in required if v.rsid not in counts]
        if missing:
            raise GenotypeError(
                rsid_field(missing[0]),
                f"every defining variant of {gene} must be called; an untested variant "
                "cannot be assumed to be reference",
                allele=missing[0],
                gene=gene,
            )
        diplotypes[gene] = _diplotype_from_counts(gene, required, counts)
    _LOGGER.debug("translated rsID calls for %d gene(s)", len(diplotypes))
    return diplotypes


def _alt_allele_count(variant: RsidVariant, call: str) -> int:
    field = rsid_field(variant.rsid)
    compact = call.strip().upper()
    bases = [b for b in _CALL_SEPARATORS.split(compact) if b]
    if len(bases) == 1 and len(bases[0]) == 2:
        bases = list(bases[0])
    if len(bases) != 2 or any(len(b) != 1 for b in bases):
        raise GenotypeError(
            field,
            "a call is two bases, e.g. 'G/A', 'G|A' or 'GA'",
            allele=variant.rsid,
            gene=variant.gene,
        )
    allowed = {variant.ref, variant.alt}
    if not set(bases) <= allowed:
        raise GenotypeError(
            field,
            f"called base is neither the reference ({variant.ref}) nor the variant "
            f"({variant.alt}) allele on the GRCh38 forward strand",
            allele=variant.rsid,
            gene=variant.gene,
        )
    return sum(1 for b in bases if b == variant.alt)


def _diplotype_from_counts(
    gene: str, variants: list[RsidVariant], counts: Mapping[str, int]
) -> Diplotype:
    stars: list[str] = []
    for variant in variants:
        stars.extend([variant.star_allele] * counts[variant.rsid])
    if len(stars) > 2:
        raise GenotypeError(
            f"genotype.rsids[{gene}]",
            "more than two variant alleles in one gene cannot be assigned to two haplotypes "
            "without phase information",
            gene=gene,
        )
    stars.extend([REFERENCE_ALLELE] * (2 - len(stars)))
    stars.sort(key=lambda star: int(star[1:]))
    first, second = (Haplotype((AlleleCopy(star),)) for star in stars)
    return Diplotype(gene, (first, second))


# ----------------------------------------------------------------------------- HLA carrier status

_HLA_POSITIVE = frozenset({"positive", "pos", "present", "detected", "carrier"})
_HLA_NEGATIVE = frozenset({"negative", "neg", "absent", "not detected", "non-carrier"})


def hla_field(marker: str) -> str:
    return f"genotype.hla[{marker}]"


def parse_hla_result(marker: str, text: str) -> str:
    """Normalises an HLA carrier-status result to ``"Positive"`` or ``"Negative"``.

    A carrier of one or two copies of the risk allele is "Positive" (CPIC reports HLA-B*15:02
    and HLA-A*31:01 as carrier status, not as a diplotype).
    """
    name = _checked_gene(marker)
    key = " ".join(text.lower().split())
    if key in _HLA_POSITIVE:
        return "Positive"
    if key in _HLA_NEGATIVE:
        return "Negative"
    # The result text is a clinical value, so it is not echoed.
    raise GenotypeError(hla_field(name), "HLA result must be 'positive' or 'negative'", gene=name)
