"""Training rows from the synthetic cohort and from the documented CSV files agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.datasets import cohort_to_csvs, load_genotypes, load_medications, load_outcomes
from common.synthetic import CohortConfig, generate_cohort
from pharmacogenomics_svc.knowledge_base import default_knowledge_base
from pharmacogenomics_svc.models.training_data import from_cohort, from_frames


def test_csv_rows_match_the_cohort_they_were_exported_from(tmp_path: Path) -> None:
    kb = default_knowledge_base()
    cohort = generate_cohort(CohortConfig(n_patients=300, n_days=120, seed=9))
    paths = cohort_to_csvs(cohort, tmp_path)
    from_csv = from_frames(
        load_genotypes(paths["genotypes"]),
        load_outcomes(paths["outcomes"]),
        load_medications(paths["medications"]),
        kb,
    )
    synthetic = from_cohort(cohort, kb)
    assert len(from_csv) == len(synthetic) == len(cohort.outcomes)
    assert from_csv.true_response is None  # real data has no ground truth

    patients = cohort.patients.set_index("patient_id")
    outcomes = cohort.outcomes.reset_index(drop=True)
    # Trials in a patient's window come one after another, each after a failure, so the
    # number of failed trials before one is its position among the patient's trials.
    position = outcomes.groupby("patient_id").cumcount().to_numpy()
    expected = {
        (pid, med): (float(pos), bool(responded), str(patients.loc[pid, "cyp2c19"]))
        for pid, med, pos, responded in zip(
            outcomes.patient_id, outcomes.medication, position, outcomes.responded, strict=True
        )
    }
    csv_ids = sorted(patients.index)  # genotypes_to_wide numbers patients in sorted id order
    for trial, responded in zip(from_csv.trials, from_csv.responded, strict=True):
        pid = csv_ids[trial.patient]
        failed_before, truth_responded, cyp2c19 = expected[(pid, trial.medication)]
        assert trial.clinical.prior_treatment_failures == failed_before
        assert bool(responded) == truth_responded
        assert trial.phenotypes["CYP2C19"].diplotype == cyp2c19
        assert trial.clinical.age_years is None  # not in the CSV files

    # From the cohort, prior failures before the window are added.
    prior = patients.loc[outcomes.patient_id, "prior_treatment_failures"].to_numpy()
    failures = np.array([t.clinical.prior_treatment_failures for t in synthetic.trials])
    np.testing.assert_array_equal(failures, prior + position)
    assert from_csv.data_sha256 != synthetic.data_sha256
