"""Configuration precedence and one-line errors naming the key."""

import pytest

from legwatch.contracts.config import ConfigError, load_config, redact_url


def write(tmp_path, text):
    p = tmp_path / "legwatch.toml"
    p.write_text(text)
    return p


def test_defaults():
    cfg = load_config(env={})
    assert cfg["subject"] == "me"
    assert cfg["mqtt.url"] == ""
    assert cfg["influx.db"] == "legwatch"
    assert cfg["mqtt.protocol"] == 5


def test_file_then_env_then_flags(tmp_path):
    p = write(tmp_path, 'subject = "ana"\n[mqtt]\nurl = "mqtt://a:1883"\n[influx]\ndb = "filedb"\n')
    cfg = load_config(p, env={})
    assert (cfg["subject"], cfg["mqtt.url"], cfg["influx.db"]) == ("ana", "mqtt://a:1883", "filedb")
    env = {"LEGWATCH_MQTT_URL": "mqtt://b:1883", "LEGWATCH_INFLUX_DB": "envdb"}
    cfg = load_config(p, env=env)
    assert (cfg["mqtt.url"], cfg["influx.db"]) == ("mqtt://b:1883", "envdb")
    cfg = load_config(p, env=env, overrides={"mqtt.url": "mqtt://c:1883", "influx.db": None})
    assert (cfg["mqtt.url"], cfg["influx.db"]) == ("mqtt://c:1883", "envdb")


def test_config_path_from_env(tmp_path):
    p = write(tmp_path, 'subject = "bo"\n')
    assert load_config(env={"LEGWATCH_CONFIG": str(p)})["subject"] == "bo"


def test_subjects_table(tmp_path):
    p = write(tmp_path, '[subjects]\nshin-left = "ana"\n')
    cfg = load_config(p, env={})
    assert cfg.subject_for("shin-left") == "ana"
    assert cfg.subject_for("other") == "me"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[mqtt]\nurll = 'x'\n", "unknown key 'mqtt.urll'"),
        ("[mqtt]\nprotocol = 'five'\n", "mqtt.protocol must be a whole number"),
        ("[mqtt]\nprotocol = 4\n", "mqtt.protocol must be 5 or 3"),
        ("[mqtt]\nurl = 'http://x'\n", "mqtt.url must look like"),
        ("[influx]\nurl = 'ftp://x'\n", "influx.url must look like"),
        ("subject = 3\n", "subject must be a string"),
        ("subject = 'a/b'\n", "subject must be"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_bad_file_names_the_key(tmp_path, text, needle):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), env={})
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)


def test_unknown_env_var_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown environment variable LEGWATCH_MQTT_ULR"):
        load_config(env={"LEGWATCH_MQTT_ULR": "x"})
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", env={})


def test_secrets_hidden():
    env = {"LEGWATCH_MQTT_URL": "mqtt://user:s3cr3t@host:1883", "LEGWATCH_INFLUX_TOKEN": "tok3n"}
    d = load_config(env=env).describe()
    assert "s3cr3t" not in str(d) and "tok3n" not in str(d)
    assert redact_url("mqtt://u:p@h:1") == "mqtt://u:***@h:1"
    with pytest.raises(ConfigError) as exc:
        load_config(env={"LEGWATCH_MQTT_URL": "http://user:s3cr3t@host"})
    assert "s3cr3t" not in str(exc.value)
