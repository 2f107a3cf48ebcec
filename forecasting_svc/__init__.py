"""Symptom Forecasting service of the Novamind mesh."""

import os

# OpenMP (torch, XGBoost) busy-waits between parallel regions by default; on a
# shared or oversubscribed CPU that spinning made training 10-30x slower in
# measurements. Passive waiting costs little when the machine is idle. Only
# effective when set before torch/XGBoost load, hence here; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
