"""Loads and validates the pharmacogenomic knowledge base (versioned data files in ``data/``).

The clinical content lives in CSV/YAML files so it can be reviewed and versioned as data;
this module only parses, validates and indexes it. Any inconsistency is a load-time error,
never a silent default, because a wrong row here becomes a wrong prescribing hint.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

_LOGGER = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "data"

DATA_FILES = (
    "VERSION",
    "allele_function.csv",
    "phenotype_rules.yaml",
    "guidance.csv",
    "inhibitors.csv",
    "medications.csv",
)

NORMAL_FUNCTION = "Normal function"
DECREASED_FUNCTION = "Decreased function"
NO_FUNCTION = "No function"
INCREASED_FUNCTION = "Increased function"
UNCERTAIN_FUNCTION = "Uncertain function"
UNKNOWN_FUNCTION = "Unknown function"
ALLELE_FUNCTIONS = frozenset(
    {
        NORMAL_FUNCTION,
        DECREASED_FUNCTION,
        NO_FUNCTION,
        INCREASED_FUNCTION,
        UNCERTAIN_FUNCTION,
        UNKNOWN_FUNCTION,
    }
)

ULTRARAPID = "Ultrarapid Metabolizer"
RAPID = "Rapid Metabolizer"
NORMAL = "Normal Metabolizer"
LIKELY_INTERMEDIATE = "Likely Intermediate Metabolizer"
INTERMEDIATE = "Intermediate Metabolizer"
LIKELY_POOR = "Likely Poor Metabolizer"
POOR = "Poor Metabolizer"
INDETERMINATE = "Indeterminate"
POSITIVE = "Positive"
NEGATIVE = "Negative"
# Guidance-table tokens: "No Result" = gene not tested; "Any" = row applies to every result.
NO_RESULT = "No Result"
ANY_PHENOTYPE = "Any"

PHENOTYPES = (
    ULTRARAPID,
    RAPID,
    NORMAL,
    LIKELY_INTERMEDIATE,
    INTERMEDIATE,
    LIKELY_POOR,
    POOR,
    INDETERMINATE,
    POSITIVE,
    NEGATIVE,
)

ACTIONS = frozenset(
    {
        "use standard",
        "adjust dose",
        "consider alternative",
        "avoid",
        "use with caution",
        "no recommendation",
    }
)
# "FDA label" marks rows taken from US prescribing information, which has no CPIC strength.
STRENGTHS = frozenset({"Strong", "Moderate", "Optional", "No recommendation", "FDA label"})
INHIBITOR_STRENGTHS = frozenset({"strong", "moderate", "weak"})
INHIBITED_ENZYMES = frozenset({"CYP2D6", "CYP2C19"})

METHOD_ACTIVITY_SCORE = "activity_score"
METHOD_FUNCTION_PAIR = "function_pair"


class KnowledgeBaseError(ValueError):
    """A data file is missing, malformed or internally inconsistent."""


@dataclass(frozen=True)
class AlleleFunction:
    gene: str
    allele: str
    function: str
    activity_value: float | None
    source: str


@dataclass(frozen=True)
class ScoreBand:
    phenotype: str
    lower: float
    lower_inclusive: bool
    upper: float | None  # None = unbounded
    upper_inclusive: bool

    def contains(self, score: float) -> bool:
        above = score >= self.lower if self.lower_inclusive else score > self.lower
        if self.upper is None:
            return above
        below = score <= self.upper if self.upper_inclusive else score < self.upper
        return above and below


@dataclass(frozen=True)
class GeneRule:
    gene: str
    method: str
    source: str
    bands: tuple[ScoreBand, ...] = ()
    # Keyed by the unordered pair of allele functions (a one-element set for homozygous pairs).
    pairs: Mapping[frozenset[str], str] = field(default_factory=lambda: MappingProxyType({}))

    def phenotypes(self) -> frozenset[str]:
        if self.method == METHOD_ACTIVITY_SCORE:
            return frozenset(band.phenotype for band in self.bands)
        return frozenset(self.pairs.values())


@dataclass(frozen=True)
class HlaMarker:
    marker: str
    results: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class GuidanceRow:
    drug: str
    gene: str
    phenotype: str
    as_min: float | None
    as_max: float | None
    gene2: str | None
    phenotype2: str | None
    as2_min: float | None
    as2_max: float | None
    population: str
    action: str
    strength: str
    recommendation: str
    dose_adjustment: str
    alternatives: tuple[str, ...]
    implication: str
    implication2: str
    comments: str
    source: str
    pmid: str | None


@dataclass(frozen=True)
class Inhibitor:
    drug: str
    enzyme: str
    strength: str
    source: str
    note: str


@dataclass(frozen=True)
class Medication:
    name: str
    drug_class: str
    genes: tuple[str, ...]
    brand_names: tuple[str, ...]
    guideline_source: str
    default_populations: tuple[str, ...]


@dataclass(frozen=True)
class DataVersion:
    version: str
    sha256: str
    file_sha256: tuple[tuple[str, str], ...]

    @property
    def label(self) -> str:
        """Short form for reports, e.g. ``2026.11.0+3f2a9c1b0d4e``."""
        return f"{self.version}+{self.sha256[:12]}"


@dataclass(frozen=True)
class KnowledgeBase:
    data_version: DataVersion
    alleles: Mapping[str, Mapping[str, AlleleFunction]]
    gene_rules: Mapping[str, GeneRule]
    indeterminate_functions: frozenset[str]
    copy_number_genes: frozenset[str]
    unknown_copy_number_minimum: int
    copy_number_source: str
    hla_markers: Mapping[str, HlaMarker]
    guidance: tuple[GuidanceRow, ...]
    inhibitors: tuple[Inhibitor, ...]
    medications: Mapping[str, Medication]

    @property
    def genes(self) -> frozenset[str]:
        return frozenset(self.gene_rules)

    def allele(self, gene: str, allele: str) -> AlleleFunction | None:
        return self.alleles.get(gene, {}).get(allele)

    def guidance_for_drug(self, drug: str) -> tuple[GuidanceRow, ...]:
        return tuple(row for row in self.guidance if row.drug == drug)

    def medication(self, name: str) -> Medication | None:
        """Looks a drug up by generic or brand name, case-insensitively."""
        key = name.strip().lower()
        if key in self.medications:
            return self.medications[key]
        for med in self.medications.values():
            if any(brand.lower() == key for brand in med.brand_names):
                return med
        return None

    def inhibitors_of(self, drug: str) -> tuple[Inhibitor, ...]:
        key = drug.strip().lower()
        return tuple(inh for inh in self.inhibitors if inh.drug == key)

    def valid_phenotypes(self, gene: str) -> frozenset[str]:
        """Phenotypes a guidance row may name for ``gene`` (computed ones plus table tokens)."""
        if gene in self.hla_markers:
            base = frozenset(self.hla_markers[gene].results)
        elif gene in self.gene_rules:
            base = self.gene_rules[gene].phenotypes() | {INDETERMINATE}
        else:
            return frozenset()
        return base | {NO_RESULT, ANY_PHENOTYPE}


def load_knowledge_base(data_dir: Path | None = None) -> KnowledgeBase:
    """Parses and validates every data file; raises KnowledgeBaseError on any problem."""
    directory = data_dir if data_dir is not None else DEFAULT_DATA_DIR
    for name in DATA_FILES:
        if not (directory / name).is_file():
            raise KnowledgeBaseError(f"knowledge base file missing: {name}")
    data_version = _data_version(directory)
    rules_doc = _load_yaml(directory / "phenotype_rules.yaml")
    gene_rules = _parse_gene_rules(rules_doc)
    indeterminate = frozenset(_require_list(rules_doc, "indeterminate_functions"))
    if not indeterminate <= ALLELE_FUNCTIONS:
        raise KnowledgeBaseError("phenotype_rules.yaml: indeterminate_functions has unknown terms")
    copy_doc = _require_mapping(rules_doc, "copy_number")
    hla = _parse_hla(rules_doc)
    alleles = _parse_alleles(directory / "allele_function.csv", gene_rules)
    medications = _parse_medications(directory / "medications.csv")
    kb = KnowledgeBase(
        data_version=data_version,
        alleles=alleles,
        gene_rules=gene_rules,
        indeterminate_functions=indeterminate,
        copy_number_genes=frozenset(str(g) for g in _require_list(copy_doc, "genes")),
        unknown_copy_number_minimum=int(copy_doc.get("unknown_copy_number_minimum", 2)),
        copy_number_source=str(copy_doc.get("source", "")).strip(),
        hla_markers=hla,
        guidance=(),
        inhibitors=_parse_inhibitors(directory / "inhibitors.csv"),
        medications=medications,
    )
    guidance = _parse_guidance(directory / "guidance.csv", kb)
    kb = KnowledgeBase(**{**kb.__dict__, "guidance": guidance})
    _LOGGER.info(
        "pharmacogenomics knowledge base loaded: version=%s alleles=%d guidance_rows=%d",
        data_version.label,
        sum(len(v) for v in alleles.values()),
        len(guidance),
    )
    return kb


@functools.lru_cache(maxsize=1)
def default_knowledge_base() -> KnowledgeBase:
    """The knowledge base shipped with the package, loaded once per process."""
    return load_knowledge_base(DEFAULT_DATA_DIR)


# ----------------------------------------------------------------------------- parsing helpers


def _data_version(directory: Path) -> DataVersion:
    version = (directory / "VERSION").read_text(encoding="utf-8").strip()
    if not version:
        raise KnowledgeBaseError("VERSION file is empty")
    combined = hashlib.sha256()
    per_file: list[tuple[str, str]] = []
    for name in DATA_FILES:
        content = (directory / name).read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        per_file.append((name, digest))
        # Name and digest both feed the combined hash so renaming a file changes the version.
        combined.update(name.encode("utf-8") + b"\0" + digest.encode("ascii") + b"\n")
    return DataVersion(version=version, sha256=combined.hexdigest(), file_sha256=tuple(per_file))


def _load_yaml(path: Path) -> Mapping[str, Any]:
    with path.open(encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle)
    if not isinstance(loaded, dict):
        raise KnowledgeBaseError(f"{path.name}: top level must be a mapping")
    return loaded


def _require_mapping(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise KnowledgeBaseError(f"phenotype_rules.yaml: '{key}' must be a mapping")
    return value


def _require_list(doc: Mapping[str, Any], key: str) -> list[Any]:
    value = doc.get(key)
    if not isinstance(value, list) or not value:
        raise KnowledgeBaseError(f"phenotype_rules.yaml: '{key}' must be a non-empty list")
    return value


def _parse_gene_rules(doc: Mapping[str, Any]) -> Mapping[str, GeneRule]:
    rules: dict[str, GeneRule] = {}
    for gene, spec in _require_mapping(doc, "genes").items():
        if not isinstance(spec, dict):
            raise KnowledgeBaseError(f"phenotype_rules.yaml: gene {gene} must be a mapping")
        source = str(spec.get("source", "")).strip()
        if not source:
            raise KnowledgeBaseError(f"phenotype_rules.yaml: gene {gene} has no source")
        method = spec.get("method")
        if method == METHOD_ACTIVITY_SCORE:
            bands = tuple(_parse_band(gene, band) for band in spec.get("bands") or [])
            if not bands:
                raise KnowledgeBaseError(f"phenotype_rules.yaml: gene {gene} has no bands")
            _check_bands_disjoint(gene, bands)
            rules[str(gene)] = GeneRule(str(gene), METHOD_ACTIVITY_SCORE, source, bands=bands)
        elif method == METHOD_FUNCTION_PAIR:
            pairs: dict[frozenset[str], str] = {}
            for entry in spec.get("pairs") or []:
                functions = entry.get("functions")
                phenotype = entry.get("phenotype")
                if (
                    not isinstance(functions, list)
                    or len(functions) != 2
                    or not set(functions) <= ALLELE_FUNCTIONS
                    or phenotype not in PHENOTYPES
                ):
                    raise KnowledgeBaseError(f"phenotype_rules.yaml: bad pair rule for {gene}")
                key = frozenset(functions)
                if key in pairs:
                    raise KnowledgeBaseError(f"phenotype_rules.yaml: duplicate pair for {gene}")
                pairs[key] = str(phenotype)
            if not pairs:
                raise KnowledgeBaseError(f"phenotype_rules.yaml: gene {gene} has no pairs")
            rules[str(gene)] = GeneRule(
                str(gene), METHOD_FUNCTION_PAIR, source, pairs=MappingProxyType(pairs)
            )
        else:
            raise KnowledgeBaseError(f"phenotype_rules.yaml: gene {gene} has unknown method")
    return MappingProxyType(rules)


def _parse_band(gene: str, band: Mapping[str, Any]) -> ScoreBand:
    phenotype = band.get("phenotype")
    if phenotype not in PHENOTYPES:
        raise KnowledgeBaseError(f"phenotype_rules.yaml: unknown phenotype in {gene} bands")
    upper = band.get("upper")
    return ScoreBand(
        phenotype=str(phenotype),
        lower=float(band["lower"]),
        lower_inclusive=bool(band["lower_inclusive"]),
        upper=None if upper is None else float(upper),
        upper_inclusive=bool(band["upper_inclusive"]),
    )


def _check_bands_disjoint(gene: str, bands: tuple[ScoreBand, ...]) -> None:
    # Probe every quarter step (activity values are multiples of 0.25, halved at most once by
    # a moderate inhibitor) so an overlapping band is caught at load time.
    for step in range(0, 64 * 8 + 1):
        score = step / 8
        matches = [b.phenotype for b in bands if b.contains(score)]
        if len(matches) > 1:
            raise KnowledgeBaseError(f"phenotype_rules.yaml: overlapping {gene} bands")


def _parse_hla(doc: Mapping[str, Any]) -> Mapping[str, HlaMarker]:
    markers: dict[str, HlaMarker] = {}
    for marker, spec in _require_mapping(doc, "hla_markers").items():
        results = tuple(str(r) for r in spec.get("results") or [])
        source = str(spec.get("source", "")).strip()
        if set(results) != {POSITIVE, NEGATIVE} or not source:
            raise KnowledgeBaseError(f"phenotype_rules.yaml: bad HLA marker {marker}")
        markers[str(marker)] = HlaMarker(str(marker), results, source)
    return MappingProxyType(markers)


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header = tuple(reader.fieldnames or ())
        missing = [c for c in required if c not in header]
        if missing:
            raise KnowledgeBaseError(f"{path.name}: missing columns {missing}")
        rows = [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    return rows


def _parse_alleles(
    path: Path, gene_rules: Mapping[str, GeneRule]
) -> Mapping[str, Mapping[str, AlleleFunction]]:
    by_gene: dict[str, dict[str, AlleleFunction]] = {}
    for line, row in enumerate(
        _read_csv(path, ("gene", "allele", "function", "activity_value", "source")), start=2
    ):
        where = f"{path.name} line {line}"
        gene, allele, function = row["gene"], row["allele"], row["function"]
        if gene not in gene_rules:
            raise KnowledgeBaseError(f"{where}: gene has no phenotype rule")
        if not allele.startswith("*"):
            raise KnowledgeBaseError(f"{where}: allele must be a star allele")
        if function not in ALLELE_FUNCTIONS:
            raise KnowledgeBaseError(f"{where}: unknown function term")
        if not row["source"]:
            raise KnowledgeBaseError(f"{where}: source is empty")
        value = _optional_float(row["activity_value"], where)
        _check_activity_value(gene_rules[gene], function, value, where)
        if allele in by_gene.setdefault(gene, {}):
            raise KnowledgeBaseError(f"{where}: duplicate allele")
        by_gene[gene][allele] = AlleleFunction(gene, allele, function, value, row["source"])
    for gene in gene_rules:
        if gene not in by_gene:
            raise KnowledgeBaseError(f"{path.name}: no alleles for {gene}")
    return MappingProxyType({g: MappingProxyType(a) for g, a in by_gene.items()})


def _check_activity_value(rule: GeneRule, function: str, value: float | None, where: str) -> None:
    if rule.method != METHOD_ACTIVITY_SCORE:
        if value is not None:
            raise KnowledgeBaseError(f"{where}: function-pair genes carry no activity value")
        return
    if function in (UNCERTAIN_FUNCTION, UNKNOWN_FUNCTION):
        if value is not None:
            raise KnowledgeBaseError(f"{where}: uncertain/unknown alleles have no value")
        return
    if value is None:
        raise KnowledgeBaseError(f"{where}: activity value required")
    consistent = {
        NO_FUNCTION: value == 0,
        DECREASED_FUNCTION: 0 < value < 1,
        NORMAL_FUNCTION: value == 1,
        INCREASED_FUNCTION: value > 1,
    }[function]
    if not consistent:
        raise KnowledgeBaseError(f"{where}: activity value contradicts function term")


def _optional_float(text: str, where: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError as exc:
        raise KnowledgeBaseError(f"{where}: not a number") from exc
    if not math.isfinite(value) or value < 0:
        raise KnowledgeBaseError(f"{where}: number must be finite and >= 0")
    return value


def _split_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(";") if part.strip())


def _parse_medications(path: Path) -> Mapping[str, Medication]:
    meds: dict[str, Medication] = {}
    required = ("name", "drug_class", "genes", "brand_names", "guideline_source")
    for line, row in enumerate(_read_csv(path, (*required, "default_populations")), start=2):
        where = f"{path.name} line {line}"
        name = row["name"].lower()
        if not name or not row["guideline_source"] or not row["genes"]:
            raise KnowledgeBaseError(f"{where}: name, genes and guideline_source are required")
        if name in meds:
            raise KnowledgeBaseError(f"{where}: duplicate medication")
        populations = _split_list(row["default_populations"]) or ("general",)
        meds[name] = Medication(
            name=name,
            drug_class=row["drug_class"],
            genes=_split_list(row["genes"]),
            brand_names=_split_list(row["brand_names"]),
            guideline_source=row["guideline_source"],
            default_populations=populations,
        )
    return MappingProxyType(meds)


def _parse_inhibitors(path: Path) -> tuple[Inhibitor, ...]:
    result: list[Inhibitor] = []
    seen: set[tuple[str, str]] = set()
    rows = _read_csv(path, ("drug", "enzyme", "strength", "source", "note"))
    for line, row in enumerate(rows, start=2):
        where = f"{path.name} line {line}"
        drug, enzyme, strength = row["drug"].lower(), row["enzyme"], row["strength"].lower()
        if enzyme not in INHIBITED_ENZYMES or strength not in INHIBITOR_STRENGTHS:
            raise KnowledgeBaseError(f"{where}: enzyme or strength not recognised")
        if not row["source"]:
            raise KnowledgeBaseError(f"{where}: source is empty")
        if (drug, enzyme) in seen:
            raise KnowledgeBaseError(f"{where}: duplicate inhibitor entry")
        seen.add((drug, enzyme))
        result.append(Inhibitor(drug, enzyme, strength, row["source"], row["note"]))
    return tuple(result)


_GUIDANCE_COLUMNS = (
    "drug",
    "gene",
    "phenotype",
    "as_min",
    "as_max",
    "gene2",
    "phenotype2",
    "as2_min",
    "as2_max",
    "population",
    "action",
    "strength",
    "recommendation",
    "dose_adjustment",
    "alternatives",
    "implication",
    "implication2",
    "comments",
    "source",
    "pmid",
)


def _parse_guidance(path: Path, kb: KnowledgeBase) -> tuple[GuidanceRow, ...]:
    rows: list[GuidanceRow] = []
    for line, raw in enumerate(_read_csv(path, _GUIDANCE_COLUMNS), start=2):
        where = f"{path.name} line {line}"
        row = _guidance_row(raw, where)
        _validate_guidance_row(row, kb, where)
        rows.append(row)
    _check_guidance_overlaps(rows, path.name)
    return tuple(rows)


def _guidance_row(raw: Mapping[str, str], where: str) -> GuidanceRow:
    return GuidanceRow(
        drug=raw["drug"].lower(),
        gene=raw["gene"],
        phenotype=raw["phenotype"],
        as_min=_optional_float(raw["as_min"], where),
        as_max=_optional_float(raw["as_max"], where),
        gene2=raw["gene2"] or None,
        phenotype2=raw["phenotype2"] or None,
        as2_min=_optional_float(raw["as2_min"], where),
        as2_max=_optional_float(raw["as2_max"], where),
        population=raw["population"] or "general",
        action=raw["action"],
        strength=raw["strength"],
        recommendation=raw["recommendation"],
        dose_adjustment=raw["dose_adjustment"],
        alternatives=_split_list(raw["alternatives"]),
        implication=raw["implication"],
        implication2=raw["implication2"],
        comments=raw["comments"],
        source=raw["source"],
        pmid=raw["pmid"] or None,
    )


def _validate_guidance_row(row: GuidanceRow, kb: KnowledgeBase, where: str) -> None:
    med = kb.medications.get(row.drug)
    if med is None:
        raise KnowledgeBaseError(f"{where}: drug is not in medications.csv")
    if not row.source:
        raise KnowledgeBaseError(f"{where}: source is empty")
    if not row.recommendation:
        raise KnowledgeBaseError(f"{where}: recommendation is empty")
    if row.action not in ACTIONS:
        raise KnowledgeBaseError(f"{where}: unknown action")
    if row.strength not in STRENGTHS:
        raise KnowledgeBaseError(f"{where}: unknown strength")
    if row.pmid is not None and not row.pmid.isdigit():
        raise KnowledgeBaseError(f"{where}: pmid must be numeric")
    if row.strength != "FDA label" and row.pmid is None:
        raise KnowledgeBaseError(f"{where}: guideline rows need a PMID")
    genes = [(row.gene, row.phenotype, row.as_min, row.as_max)]
    if row.gene2 is not None:
        genes.append((row.gene2, row.phenotype2 or "", row.as2_min, row.as2_max))
    elif row.phenotype2 is not None:
        raise KnowledgeBaseError(f"{where}: phenotype2 without gene2")
    for gene, phenotype, lo, hi in genes:
        if gene not in med.genes:
            raise KnowledgeBaseError(f"{where}: gene not listed for the drug in medications.csv")
        if phenotype not in kb.valid_phenotypes(gene):
            raise KnowledgeBaseError(f"{where}: phenotype not valid for {gene}")
        if (lo is None) != (hi is None) or (lo is not None and hi is not None and lo > hi):
            raise KnowledgeBaseError(f"{where}: activity-score range is incomplete or reversed")
        if lo is not None:
            rule = kb.gene_rules.get(gene)
            if rule is None or rule.method != METHOD_ACTIVITY_SCORE:
                raise KnowledgeBaseError(f"{where}: activity-score range on a non-score gene")


def _check_guidance_overlaps(rows: list[GuidanceRow], name: str) -> None:
    # Two rows of the same source family that could match the same patient would make the
    # answer depend on row order; FDA label rows may sit next to CPIC rows by design.
    groups: dict[tuple[str, ...], list[GuidanceRow]] = {}
    for row in rows:
        key = (
            row.drug,
            row.gene,
            row.phenotype,
            row.gene2 or "",
            row.phenotype2 or "",
            row.population,
            "FDA" if row.strength == "FDA label" else "CPIC",
        )
        groups.setdefault(key, []).append(row)
    for group_key, group in groups.items():
        for i, first in enumerate(group):
            for second in group[i + 1 :]:
                if _ranges_overlap(first.as_min, first.as_max, second.as_min, second.as_max) and (
                    _ranges_overlap(first.as2_min, first.as2_max, second.as2_min, second.as2_max)
                ):
                    drug, gene = group_key[0], group_key[1]
                    raise KnowledgeBaseError(f"{name}: overlapping rows for {drug} {gene}")


def _ranges_overlap(
    lo1: float | None, hi1: float | None, lo2: float | None, hi2: float | None
) -> bool:
    if lo1 is None or hi1 is None or lo2 is None or hi2 is None:
        return True
    return lo1 <= hi2 and lo2 <= hi1
