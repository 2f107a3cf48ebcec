"""Request limits of the mesh, defined once.

Each service enforces the limits of its own requests, and the orchestrator
enforces the same numbers on GenerateInsights before it fans out, so a request
that one section would refuse is refused at the edge with the field named —
never sent three times downstream, never stored. Changing a number here
changes it everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

# ----------------------------------------------------------------------------- times

#: Device clocks drift; a reading a few minutes "ahead" is not a future observation.
FUTURE_TOLERANCE: Final = timedelta(minutes=5)
#: Observations before this are unset or corrupt timestamps (the biometric service's floor,
#: and the stricter of the services' floors, so the edge accepts what both accept).
EARLIEST_OBSERVATION: Final = datetime(2000, 1, 1, tzinfo=UTC)
#: google.protobuf.Timestamp's own range: 0001-01-01 .. 9999-12-31.
TIMESTAMP_MIN_SECONDS: Final = -62_135_596_800
TIMESTAMP_MAX_SECONDS: Final = 253_402_300_799

# ----------------------------------------------------------------------------- counts

#: Symptom observations and biometric samples together in one GenerateInsights request
#: (NOVAMIND_MAX_HISTORY_POINTS may lower or raise it per deployment).
DEFAULT_MAX_HISTORY_POINTS: Final = 20_000
#: Biometric samples in one biometric-service request.
MAX_BIOMETRIC_SAMPLES: Final = 1_000_000
#: Symptom observations (indicators) in one biometric-service request.
MAX_INDICATORS: Final = 100_000
#: Medication events in one forecasting request.
MAX_MEDICATION_EVENTS: Final = 1_000
#: Genotype entries in one pharmacogenomics request.
MAX_DIPLOTYPES: Final = 32
MAX_HLA_RESULTS: Final = 32
MAX_VARIANT_CALLS: Final = 256
#: Current or candidate medications in one pharmacogenomics request.
MAX_MEDICATIONS: Final = 100

# ----------------------------------------------------------------------------- values

#: Free-text fields: drug names, gene symbols, diplotypes, alleles, rsIDs.
MAX_TEXT: Final = 64
MAX_DOSE_MG: Final = 10_000.0
MAX_HORIZON_DAYS: Final = 90
#: What a horizon of 0 (unset) means, on ForecastSymptoms and GenerateInsights alike.
DEFAULT_HORIZON_DAYS: Final = 30
MAX_PATIENT_ID_LENGTH: Final = 128

# ----------------------------------------------------------------------------- sizes

#: Largest serialized PatientData the orchestrator accepts, and so the largest input part
#: of a stored snapshot: 20,000 observations take about 0.6 MiB.
MAX_PATIENT_DATA_BYTES: Final = 4 * 1024 * 1024
#: Largest encoded snapshot (input plus insights) the store is asked to keep.
MAX_SNAPSHOT_BYTES: Final = 8 * 1024 * 1024
