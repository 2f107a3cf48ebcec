from __future__ import annotations

from pathlib import Path

import pytest

from common.settings import Settings, SettingsError


def test_defaults_per_service_and_health_port_offset():
    settings = Settings.from_env("biometric", env={})
    assert (settings.port, settings.health_port) == (50052, 51052)
    assert settings.allowed_callers == ("orchestrator", "operator")
    assert settings.tls_dir == Path("var/certs")
    assert settings.insecure is False
    assert Settings.from_env("orchestrator", env={}).allowed_callers == ("*",)


def test_overrides_are_typed():
    settings = Settings.from_env(
        "forecasting",
        env={
            "NOVAMIND_PORT": "6001",
            "NOVAMIND_INSECURE": "1",
            "NOVAMIND_ALLOWED_CALLERS": "orchestrator, ops ",
            "NOVAMIND_GRACE_SECONDS": "2.5",
            "NOVAMIND_TLS_DIR": "/etc/novamind/tls",
            "NOVAMIND_FORECAST_TRIALS": "7",
        },
    )
    assert settings.port == 6001 and settings.health_port == 7001
    assert settings.insecure is True
    assert settings.allowed_callers == ("orchestrator", "ops")
    assert settings.grace_seconds == 2.5
    assert settings.tls_dir == Path("/etc/novamind/tls")
    assert settings.extra == {"NOVAMIND_FORECAST_TRIALS": "7"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NOVAMIND_PORT", "http"),
        ("NOVAMIND_PORT", "70000"),
        ("NOVAMIND_INSECURE", "maybe"),
        ("NOVAMIND_GRACE_SECONDS", "-1"),
        ("NOVAMIND_LOG_LEVEL", "LOUD"),
    ],
)
def test_malformed_variable_is_named(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env("forecasting", env={name: value})


def test_secret_from_env_file_and_dev_key(tmp_path):
    settings = Settings.from_env("orchestrator", env={"NOVAMIND_KEY_DIR": str(tmp_path / "k")})
    assert settings.secret("audit", env={"NOVAMIND_AUDIT_KEY": "ab" * 32}) == bytes([0xAB]) * 32
    key_file = tmp_path / "secret"
    key_file.write_text("cd" * 32 + "\n")
    assert settings.secret("store", env={"NOVAMIND_STORE_KEY_FILE": str(key_file)}) == b"\xcd" * 32
    with pytest.raises(SettingsError, match="NOVAMIND_AUDIT_KEY"):
        settings.secret("audit", env={"NOVAMIND_AUDIT_KEY": "abcd"})
    dev = settings.secret("pseudonym", env={})
    assert len(dev) == 32 and settings.secret("pseudonym", env={}) == dev
    assert (tmp_path / "k" / "pseudonym.key").stat().st_mode & 0o777 == 0o600


def test_required_secrets_refuse_dev_keys(tmp_path):
    settings = Settings.from_env(
        "orchestrator",
        env={"NOVAMIND_REQUIRE_SECRETS": "1", "NOVAMIND_KEY_DIR": str(tmp_path)},
    )
    with pytest.raises(SettingsError, match="NOVAMIND_PSEUDONYM_KEY"):
        settings.secret("pseudonym", env={})


@pytest.mark.parametrize(
    "target",
    [
        "localhost:50052",
        "novamind-biometric:50052",
        "dns:///novamind-biometric-headless.novamind.svc.cluster.local:50052",
        "ipv4:127.0.0.1:6001,127.0.0.1:6002",
        "ipv6:[::1]:6001",
        "unix:///run/novamind/biometric.sock",
    ],
)
def test_downstream_address_accepts_grpc_target_uris(target):
    settings = Settings.from_env("orchestrator", env={"NOVAMIND_BIOMETRIC_ADDR": target})
    assert settings.biometric_addr == target


@pytest.mark.parametrize(
    "target", ["biometric", "localhost:", "localhost:99999", "dns:///", "ipv4:"]
)
def test_malformed_downstream_address_is_named(target):
    with pytest.raises(SettingsError, match="NOVAMIND_BIOMETRIC_ADDR"):
        Settings.from_env("orchestrator", env={"NOVAMIND_BIOMETRIC_ADDR": target})


def test_expected_server_names_default_to_each_service_identity():
    settings = Settings.from_env("orchestrator", env={"NOVAMIND_FORECASTING_SERVER_NAME": "fc"})
    assert (
        settings.forecasting_server_name,
        settings.biometric_server_name,
        settings.pharmacogenomics_server_name,
    ) == ("fc", "biometric", "pharmacogenomics")


def test_store_url_must_be_postgresql_and_is_never_echoed():
    assert Settings.from_env("orchestrator", env={}).store_url == ""
    url = "postgresql://novamind@db:5432/novamind?sslmode=verify-full"
    assert Settings.from_env("orchestrator", env={"NOVAMIND_STORE_URL": url}).store_url == url
    with pytest.raises(SettingsError, match="NOVAMIND_STORE_URL") as caught:
        Settings.from_env("orchestrator", env={"NOVAMIND_STORE_URL": "mysql://u:s3cret@db/x"})
    assert "s3cret" not in str(caught.value)


def test_snapshot_retention_defaults_to_keeping_everything():
    settings = Settings.from_env("orchestrator", env={})
    assert settings.snapshot_retention_days == 0
    assert settings.snapshot_prune_interval_seconds == 3600.0
    for unset in ("", " ", "0"):
        env = {"NOVAMIND_SNAPSHOT_RETENTION_DAYS": unset}
        assert Settings.from_env("orchestrator", env=env).snapshot_retention_days == 0


def test_snapshot_retention_days_and_interval_are_read():
    settings = Settings.from_env(
        "orchestrator",
        env={
            "NOVAMIND_SNAPSHOT_RETENTION_DAYS": " 30 ",
            "NOVAMIND_SNAPSHOT_PRUNE_INTERVAL_SECONDS": "0.5",
        },
    )
    assert settings.snapshot_retention_days == 30
    assert settings.snapshot_prune_interval_seconds == 0.5


@pytest.mark.parametrize("value", ["-7", "1.5", "30d", "thirty", "1e3", "36501", "３０", "s3cret"])
def test_bad_snapshot_retention_names_the_variable_and_rule_without_echoing(value):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env("orchestrator", env={"NOVAMIND_SNAPSHOT_RETENTION_DAYS": value})
    message = str(caught.value)
    assert message.startswith("NOVAMIND_SNAPSHOT_RETENTION_DAYS: must be a whole number of days")
    assert "0 (or unset) to keep snapshots forever" in message
    assert value not in message


@pytest.mark.parametrize("value", ["0", "-1", "never", "nan", "86401"])
def test_bad_prune_interval_is_named(value):
    with pytest.raises(SettingsError, match="NOVAMIND_SNAPSHOT_PRUNE_INTERVAL_SECONDS"):
        Settings.from_env("orchestrator", env={"NOVAMIND_SNAPSHOT_PRUNE_INTERVAL_SECONDS": value})
