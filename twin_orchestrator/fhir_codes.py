"""The FHIR vocabulary the mesh reads and writes: code systems, LOINC codes, RxNorm, HGNC.

Sources (see docs/data-formats.md, "FHIR R4" for the full table):

- LOINC (https://loinc.org): 44261-6 PHQ-9 total score, 70274-6 GAD-7 total
  score, 8867-4 heart rate, 40443-4 resting heart rate, 80404-7 R-R interval
  standard deviation (HRV SDNN), 41950-7 steps in 24 hours, 55423-8 steps
  (pedometer), 93832-4 sleep duration, 30525-0 age, 84413-4 genotype display
  name, 48018-6 gene studied. 84413-4 and 48018-6 are used as the HL7 Genomics
  Reporting IG's Genotype profile uses them (value coded in PharmVar as
  "CYP2D6 *1/*4", gene as an HGNC id).
- RxNorm ingredient concepts (RXCUI) as listed in CPIC's drug table
  (cpicpgx/cpic-schema, drug.sql, column drugId "RxNorm:<rxcui>").
- HGNC gene ids as in the Genomics Reporting IG examples (CYP2D6 HGNC:2625,
  CYP2C19 HGNC:2621, HLA-A HGNC:4931, HLA-B HGNC:4932) and HGNC (CYP2C9
  HGNC:2623, CYP2B6 HGNC:2615).

Heart rate (8867-4, any time of day) and resting heart rate (40443-4) map to
two metrics, as do HRV as SDNN (80404-7) and as RMSSD: one is never
substituted for the other. No LOINC code was found for the mesh's 0-10 daily
self-ratings of mood (10 = best) and anxiety (10 = worst), nor for HRV as
RMSSD, sleep efficiency, active minutes or prior failed antidepressant trials,
so those live in the project's own code system (``NOVAMIND_SYSTEM``). A code
from any other system is reported as unknown, never guessed.
"""

from __future__ import annotations

from typing import Final

from novamind.common.v1 import common_pb2

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
HGNC: Final = "http://www.genenames.org/geneId"
PHARMVAR: Final = "https://www.pharmvar.org/"
SNOMED: Final = "http://snomed.info/sct"
#: The project's own code system, for what LOINC has no code for.
NOVAMIND_SYSTEM: Final = "https://fhir.novamind.example/CodeSystem/twin"
#: Identifier system of the patient id the mesh was given.
PATIENT_ID_SYSTEM: Final = "https://fhir.novamind.example/NamingSystem/patient-id"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"

# --- symptom instruments -------------------------------------------------------------

PHQ9_TOTAL: Final = (LOINC, "44261-6")
GAD7_TOTAL: Final = (LOINC, "70274-6")
MOOD_RATING: Final = (NOVAMIND_SYSTEM, "mood-rating")
ANXIETY_RATING: Final = (NOVAMIND_SYSTEM, "anxiety-rating")

INSTRUMENT_CODES: Final[dict[tuple[str, str], int]] = {
    PHQ9_TOTAL: common_pb2.INSTRUMENT_PHQ9,
    GAD7_TOTAL: common_pb2.INSTRUMENT_GAD7,
    MOOD_RATING: common_pb2.INSTRUMENT_MOOD,
    ANXIETY_RATING: common_pb2.INSTRUMENT_ANXIETY,
}
INSTRUMENT_DISPLAY: Final[dict[int, str]] = {
    common_pb2.INSTRUMENT_PHQ9: (
        "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"
    ),
    common_pb2.INSTRUMENT_GAD7: (
        "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]"
    ),
    common_pb2.INSTRUMENT_MOOD: "Daily self-rated mood, 0 (worst) to 10 (best)",
    common_pb2.INSTRUMENT_ANXIETY: "Daily self-rated anxiety, 0 (none) to 10 (worst)",
}

# --- biometrics ----------------------------------------------------------------------

HEART_RATE: Final = (LOINC, "8867-4")
RESTING_HEART_RATE: Final = (LOINC, "40443-4")
HRV_SDNN: Final = (LOINC, "80404-7")
HRV_RMSSD: Final = (NOVAMIND_SYSTEM, "hrv-rmssd")
STEPS_24H: Final = (LOINC, "41950-7")
STEPS_PEDOMETER: Final = (LOINC, "55423-8")
SLEEP_DURATION: Final = (LOINC, "93832-4")
SLEEP_EFFICIENCY: Final = (NOVAMIND_SYSTEM, "sleep-efficiency")
ACTIVE_MINUTES: Final = (NOVAMIND_SYSTEM, "active-minutes")

BIOMETRIC_CODES: Final[dict[tuple[str, str], int]] = {
    HEART_RATE: common_pb2.BIOMETRIC_METRIC_HEART_RATE,
    RESTING_HEART_RATE: common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE,
    HRV_SDNN: common_pb2.BIOMETRIC_METRIC_HRV_SDNN,
    HRV_RMSSD: common_pb2.BIOMETRIC_METRIC_HRV_RMSSD,
    STEPS_24H: common_pb2.BIOMETRIC_METRIC_STEPS,
    STEPS_PEDOMETER: common_pb2.BIOMETRIC_METRIC_STEPS,
    SLEEP_DURATION: common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION,
    SLEEP_EFFICIENCY: common_pb2.BIOMETRIC_METRIC_SLEEP_EFFICIENCY,
    ACTIVE_MINUTES: common_pb2.BIOMETRIC_METRIC_ACTIVE_MINUTES,
}
#: The code the export writes for each metric.
BIOMETRIC_EXPORT_CODES: Final[dict[int, tuple[str, str, str]]] = {
    common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE: (*RESTING_HEART_RATE, "Heart rate --resting"),
    common_pb2.BIOMETRIC_METRIC_HRV_RMSSD: (*HRV_RMSSD, "Heart rate variability, RMSSD"),
    common_pb2.BIOMETRIC_METRIC_STEPS: (*STEPS_PEDOMETER, "Number of steps"),
    common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION: (*SLEEP_DURATION, "Sleep duration"),
    common_pb2.BIOMETRIC_METRIC_SLEEP_EFFICIENCY: (*SLEEP_EFFICIENCY, "Sleep efficiency"),
    common_pb2.BIOMETRIC_METRIC_ACTIVE_MINUTES: (*ACTIVE_MINUTES, "Active minutes"),
    common_pb2.BIOMETRIC_METRIC_HEART_RATE: (*HEART_RATE, "Heart rate"),
    common_pb2.BIOMETRIC_METRIC_HRV_SDNN: (
        *HRV_SDNN,
        "R-R interval.standard deviation (Heart rate variability)",
    ),
}
#: Observation category of each exported metric: 8867-4 is one of the FHIR R4 Vital Signs
#: profile's codes, which requires category vital-signs (hl7.org/fhir/R4/observation-vitalsigns);
#: the others are activity (device) observations.
BIOMETRIC_EXPORT_CATEGORY: Final[dict[int, str]] = {
    common_pb2.BIOMETRIC_METRIC_HEART_RATE: "vital-signs",
}

# --- clinical profile ----------------------------------------------------------------

AGE: Final = (LOINC, "30525-0")
PRIOR_TREATMENT_FAILURES: Final = (NOVAMIND_SYSTEM, "prior-antidepressant-failures")

# --- genotype (HL7 Genomics Reporting IG) ---------------------------------------------

GENOTYPE_DISPLAY: Final = (LOINC, "84413-4")
GENE_STUDIED: Final = (LOINC, "48018-6")

HGNC_IDS: Final[dict[str, str]] = {
    "CYP2D6": "HGNC:2625",
    "CYP2C19": "HGNC:2621",
    "CYP2C9": "HGNC:2623",
    "CYP2B6": "HGNC:2615",
    "HLA-A": "HGNC:4931",
    "HLA-B": "HGNC:4932",
}
GENE_BY_HGNC: Final[dict[str, str]] = {hgnc: gene for gene, hgnc in HGNC_IDS.items()}
#: HLA alleles the pharmacogenomics knowledge base acts on
#: (pharmacogenomics_svc/data/phenotype_rules.yaml), by locus.
HLA_ALLELES_OF_INTEREST: Final[dict[str, tuple[str, ...]]] = {
    "HLA-A": ("HLA-A*31:01",),
    "HLA-B": ("HLA-B*15:02",),
}

# --- medications ---------------------------------------------------------------------

#: RxNorm ingredient RXCUI -> generic name, from CPIC's drug table (drug.sql), for the
#: medications the pharmacogenomics knowledge base and the synthetic worlds use.
#: desvenlafaxine, fosphenytoin, deutetrabenazine and valbenazine are not in that table:
#: they are matched by name only.
RXNORM_INGREDIENTS: Final[dict[str, str]] = {
    "704": "amitriptyline",
    "89013": "aripiprazole",
    "38400": "atomoxetine",
    "1658314": "brexpiprazole",
    "42347": "bupropion",
    "2002": "carbamazepine",
    "2556": "citalopram",
    "2597": "clomipramine",
    "3247": "desipramine",
    "3638": "doxepin",
    "72625": "duloxetine",
    "321988": "escitalopram",
    "283742": "esomeprazole",
    "4493": "fluoxetine",
    "42355": "fluvoxamine",
    "73178": "iloperidone",
    "5691": "imipramine",
    "15996": "mirtazapine",
    "7531": "nortriptyline",
    "7646": "omeprazole",
    "32624": "oxcarbazepine",
    "32937": "paroxetine",
    "8183": "phenytoin",
    "8331": "pimozide",
    "9068": "quinidine",
    "36437": "sertraline",
    "37801": "terbinafine",
    "10834": "trimipramine",
    "39786": "venlafaxine",
    "1455099": "vortioxetine",
}
RXNORM_BY_NAME: Final[dict[str, str]] = {name: rxcui for rxcui, name in RXNORM_INGREDIENTS.items()}

#: Generic names matched in a medication's text or display (lowercase), besides the above.
KNOWN_GENERIC_NAMES: Final[frozenset[str]] = frozenset(
    {
        *RXNORM_INGREDIENTS.values(),
        "desvenlafaxine",
        "fosphenytoin",
        "deutetrabenazine",
        "valbenazine",
        "abiraterone",
        "cinacalcet",
        "fluconazole",
        "lorcaserin",
        "mirabegron",
        "rolapitant",
        "ticlopidine",
    }
)
