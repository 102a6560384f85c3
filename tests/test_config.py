"""The config loader: precedence, environment mapping, relative paths, and one-line errors
that name the file, the key and the line (docs/CONTRACTS.md section 4)."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from flightsync.cli import app
from flightsync.config import (
    ProviderSettings,
    Settings,
    database_url,
    load_settings,
    state_dir,
)
from flightsync.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]



def write(tmp_path: Path, text: str, name: str = "flightsync.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


# --- precedence ------------------------------------------------------------------------------

def test_defaults_without_file_or_environment() -> None:
    """With no file, no variables and no options the built-in defaults apply."""
    assert load_settings(None, {}) == Settings()


def test_yaml_overrides_defaults(tmp_path: Path) -> None:
    """A value in the YAML file replaces the default."""
    path = write(tmp_path, "cache:\n  ttl_active_seconds: 120\n")
    settings = load_settings(path, {})
    assert settings.cache.ttl_active_seconds == 120
    assert settings.cache.ttl_future_seconds == Settings().cache.ttl_future_seconds


def test_environment_overrides_yaml(tmp_path: Path) -> None:
    """An environment variable beats the YAML file (FLIGHT_SYNC_CACHE_TTL_MS is milliseconds)."""
    path = write(tmp_path, "database_url: sqlite:////from/yaml.db\n"
                           "cache: {ttl_active_seconds: 120}\nenabled: true\n")
    settings = load_settings(path, {"FLIGHTSYNC_DATABASE_URL": "sqlite:////from/env.db",
                                    "FLIGHT_SYNC_CACHE_TTL_MS": "4500",
                                    "FLIGHT_SYNC_ENABLED": "false"})
    assert settings.database_url == "sqlite:////from/env.db"
    assert settings.cache.ttl_active_seconds == 4.5
    assert settings.enabled is False


def test_options_override_environment_and_yaml(tmp_path: Path) -> None:
    """Options (nested or dotted keys) beat both the environment and the file."""
    path = write(tmp_path, "http: {max_workers: 4}\ndatabase_url: sqlite:////from/yaml.db\n")
    settings = load_settings(
        path, {"FLIGHTSYNC_DATABASE_URL": "sqlite:////from/env.db"},
        {"http.max_workers": 9, "database_url": "sqlite:////from/option.db"})
    assert settings.http.max_workers == 9
    assert settings.database_url == "sqlite:////from/option.db"


def test_none_options_do_not_override(tmp_path: Path) -> None:
    """An option left unset (None) keeps the value from the lower layers."""
    path = write(tmp_path, "http: {max_workers: 4}\n")
    assert load_settings(path, {}, {"http": {"max_workers": None}}).http.max_workers == 4


def test_config_path_from_environment(tmp_path: Path) -> None:
    """Without an explicit path, FLIGHTSYNC_CONFIG names the file."""
    path = write(tmp_path, "batch: {size: 7}\n")
    assert load_settings(None, {"FLIGHTSYNC_CONFIG": str(path)}).batch.size == 7


def test_empty_variables_count_as_unset(tmp_path: Path) -> None:
    """An empty variable does not wipe the file's value."""
    path = write(tmp_path, "database_url: sqlite:////from/yaml.db\n")
    settings = load_settings(path, {"FLIGHTSYNC_DATABASE_URL": "", "AMADEUS_CLIENT_ID": ""})
    assert settings.database_url == "sqlite:////from/yaml.db"
    assert "amadeus" not in settings.providers


def test_provider_variables_fill_credentials_and_base_url(tmp_path: Path) -> None:
    """Credential variables land in ProviderSettings.credentials, *_BASE_URL in base_url,
    merged with the file's settings for the same provider."""
    path = write(tmp_path, "providers:\n  lufthansa: {priority: 50}\n")
    env = {"LUFTHANSA_CLIENT_ID": "lh-id", "LUFTHANSA_CLIENT_SECRET": "lh-secret",
           "LUFTHANSA_BASE_URL": "http://127.0.0.1:1", "AFKLM_API_KEY": "af-key",
           "BA_CLIENT_KEY": "ba-key", "FLIGHTAWARE_API_KEY": "fa-key",
           "AMADEUS_CLIENT_ID": "am-id", "AMADEUS_CLIENT_SECRET": "am-secret",
           "FLIGHTSYNC_WEBHOOK_SECRET": "whsec_abc"}
    settings = load_settings(path, env)
    lufthansa = settings.providers["lufthansa"]
    assert lufthansa.priority == 50
    assert lufthansa.base_url == env["LUFTHANSA_BASE_URL"]
    assert lufthansa.credentials == {"client_id": "lh-id", "client_secret": "lh-secret"}
    assert settings.providers["airfrance_klm"].credentials == {"api_key": "af-key"}
    assert settings.providers["british_airways"].credentials == {"api_key": "ba-key"}
    assert settings.providers["flightaware"].credentials == {"api_key": "fa-key"}
    assert settings.providers["amadeus"].credentials["client_secret"] == "am-secret"
    assert settings.webhook_secret == "whsec_abc"
    assert "lh-secret" not in repr(settings)


def test_relative_paths_are_relative_to_the_yaml_file(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """policy, state_dir and metrics.textfile resolve against the file's folder, not the cwd."""
    folder = tmp_path / "etc"
    folder.mkdir()
    path = write(folder, "policy: policy.yaml\nstate_dir: state\n"
                         "metrics: {textfile: out/fs.prom}\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings(Path("etc/flightsync.yaml"), {})
    assert settings.policy == path.parent / "policy.yaml"
    assert settings.state_dir == path.parent / "state"
    assert settings.metrics.textfile == path.parent / "out" / "fs.prom"


@pytest.mark.parametrize(("given", "expected"), [
    ("sqlite:///flights.db", "sqlite:///{etc}/flights.db"),
    ("sqlite+pysqlite:///db/f.db?timeout=5", "sqlite+pysqlite:///{etc}/db/f.db?timeout=5"),
    ("sqlite:////var/lib/f.db", "sqlite:////var/lib/f.db"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
])
def test_a_relative_sqlite_database_in_the_file_is_relative_to_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str, expected: str) -> None:
    """A relative SQLite path in the YAML resolves against the file's folder (cron runs from
    anywhere); absolute paths, in-memory databases and other URLs are kept; the environment
    variable is taken as given."""
    folder = tmp_path / "etc"
    folder.mkdir()
    write(folder, f"database_url: '{given}'\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings(Path("etc/flightsync.yaml"), {})
    assert settings.database_url == expected.format(etc=folder.as_posix())
    from_env = load_settings(None, {"FLIGHTSYNC_DATABASE_URL": "sqlite:///flights.db"})
    assert from_env.database_url == "sqlite:///flights.db"


def test_state_dir_and_database_url_defaults(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Without settings: $XDG_STATE_HOME/flightsync, and SQLite inside it."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    settings = load_settings(None, {})
    assert state_dir(settings) == tmp_path / "xdg" / "flightsync"
    assert database_url(settings) == f"sqlite:///{tmp_path / 'xdg' / 'flightsync'}/flightsync.db"
    explicit = load_settings(None, {"FLIGHTSYNC_STATE_DIR": str(tmp_path / "s")})
    assert database_url(explicit) == f"sqlite:///{tmp_path / 's'}/flightsync.db"


def test_example_config_loads_and_documents_every_key() -> None:
    """config/flightsync.yaml loads, and names every settings key at every depth."""
    path = REPO / "config" / "flightsync.yaml"
    settings = load_settings(path, {})
    assert settings.policy == path.parent / "policy.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    missing = [key for key in _model_keys(Settings) if not _present(document, key)]
    assert missing == []


def _model_keys(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    keys = []
    for name, info in model.model_fields.items():
        if info.exclude:
            continue  # secrets: environment only
        keys.append((*prefix, name))
        inner = _inner_model(info.annotation)
        if inner is ProviderSettings:
            keys.extend(_model_keys(inner, (*prefix, name, "*")))
        elif inner is not None:
            keys.extend(_model_keys(inner, (*prefix, name)))
    return keys


def _inner_model(annotation: object) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _present(document: object, key: tuple[str, ...]) -> bool:
    """Whether ``key`` appears; ``*`` matches any provider, lists match in any item."""
    if not key:
        return True
    if isinstance(document, list):
        return any(_present(item, key) for item in document)
    if not isinstance(document, dict):
        return False
    head, rest = key[0], key[1:]
    if head == "*":
        return any(_present(value, rest) for value in document.values())
    return head in document and _present(document[head], rest)


# --- bad configuration -----------------------------------------------------------------------

BAD_FILES = {
    "unknown top-level key": ("database_url: sqlite:///x.db\ncahce:\n  ttl_active_seconds: 5\n",
                              "cahce", "cahce"),
    "unknown nested key": ("cache:\n  ttl_active_seconds: 5\n  ttl_futur_seconds: 6\n",
                           "cache.ttl_futur_seconds", "ttl_futur_seconds"),
    "unknown key in a provider": ("providers:\n  lufthansa:\n    priority: 3\n    prio: 4\n",
                                  "providers.lufthansa.prio", "prio:"),
    "unknown key in a list item": ("notify:\n  - url: http://x\n    secert_env: Y\n",
                                   "notify[0].secert_env", "secert_env"),
    "wrong type": ("retry:\n  attempts: 3\n  backoff_max_seconds: soon\n",
                   "retry.backoff_max_seconds", "backoff_max_seconds"),
    "wrong type of section": ("breaker: 5\n", "breaker", "breaker"),
    "out of range": ("http:\n  max_workers: 0\n", "http.max_workers", "max_workers"),
    "unknown provider": ("providers:\n  lufthansa: {}\n  ryanair: {enabled: true}\n",
                         "providers.ryanair", "ryanair"),
    "missing required key": ("notify:\n  - secret_env: Y\n", "notify[0].url", "secret_env"),
    "secret in the file": ("providers:\n  amadeus:\n    credentials: {client_id: x}\n",
                           "providers.amadeus.credentials", "credentials"),
    "base_url not a URL": ("providers:\n  lufthansa:\n    priority: 3\n"
                           "    base_url: \"not a url\"\n",
                           "providers.lufthansa.base_url", "base_url"),
    "base_url not http": ("providers:\n  flightaware:\n    base_url: ftp://x/aeroapi\n",
                          "providers.flightaware.base_url", "base_url"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_names_file_key_and_line(tmp_path: Path, case: str) -> None:
    """Each kind of bad file raises ConfigError (exit 2) with one line naming the file, the
    offending key path and the line it is on."""
    text, key, needle = BAD_FILES[case]
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert "\n" not in message
    assert str(path) in message
    assert key in message
    assert f"line {line_of(text, needle)}" in message


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    """A syntax error names the file and the line of the problem."""
    text = "cache:\n  ttl_active_seconds: 5\nproviders: {lufthansa: [1, 2}\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert str(path) in str(caught.value)
    assert f"line {line_of(text, 'providers')}" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    """A file that is not a mapping of keys is refused, naming the file."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="mapping") as caught:
        load_settings(path, {})
    assert str(path) in str(caught.value)


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    """An empty (or comment-only) file changes nothing."""
    assert load_settings(write(tmp_path, "# nothing yet\n"), {}) == Settings()


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    """A missing file and a path that cannot be read as a file are ConfigErrors naming it."""
    for path, words in ((tmp_path / "absent.yaml", "not found"),
                        (tmp_path, "cannot be read")):
        with pytest.raises(ConfigError, match=words) as caught:
            load_settings(path, {})
        assert str(path) in str(caught.value)


def test_undecodable_file(tmp_path: Path) -> None:
    """A file that is not UTF-8 text is refused, naming the file."""
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00cache")
    with pytest.raises(ConfigError, match="cannot be read") as caught:
        load_settings(path, {})
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(("variable", "value"), [
    ("FLIGHT_SYNC_ENABLED", "maybe"),
    ("FLIGHT_SYNC_CACHE_TTL_MS", "soon"),
    ("FLIGHT_SYNC_CACHE_TTL_MS", "-5"),
    ("LUFTHANSA_BASE_URL", "ftp://x"),
    ("AMADEUS_BASE_URL", "test.api.amadeus.com"),
    ("BA_BASE_URL", "https://"),
    ("AFKLM_BASE_URL", "http://api.airfranceklm.com:http"),
])
def test_bad_environment_names_the_variable(variable: str, value: str) -> None:
    """A bad environment value is a ConfigError naming the variable."""
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {variable: value})
    assert variable in str(caught.value)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "https://api.lufthansa.com",
                                 "HTTPS://aeroapi.flightaware.com/aeroapi/",
                                 "http://[::1]:9/base"])
def test_http_base_urls_are_accepted(url: str) -> None:
    """Absolute http and https URLs with a host (a port and a path allowed) pass as given."""
    settings = load_settings(None, {"LUFTHANSA_BASE_URL": url})
    assert settings.providers["lufthansa"].base_url == url


def test_bad_base_url_variable_through_the_cli() -> None:
    """LUFTHANSA_BASE_URL=ftp://x is exit 2 with one `error:` line naming the variable and
    saying what is expected, before any provider is called."""
    result = CliRunner().invoke(app, ["providers"], env={"LUFTHANSA_BASE_URL": "ftp://x"})
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: environment variable LUFTHANSA_BASE_URL: expected an absolute "
                      "http or https URL with a host (e.g. https://api.example.com), got "
                      "'ftp://x'"]
    assert json.loads(result.stdout)["error"]["code"] == ConfigError.code


def test_bad_option_names_the_option() -> None:
    """A bad option value names the option, not a file."""
    with pytest.raises(ConfigError, match=r"option http\.max_workers"):
        load_settings(None, {}, {"http.max_workers": 0})


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_through_the_cli(tmp_path: Path, case: str) -> None:
    """Through the CLI a bad file is exit 2, one `error:` line naming file, key and line, and
    the JSON error object on stdout."""
    text, key, needle = BAD_FILES[case]
    path = write(tmp_path, text)
    result = CliRunner().invoke(app, ["--config", str(path), "status"])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert str(path) in errors[0] and key in errors[0]
    assert f"line {line_of(text, needle)}" in errors[0]
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout)["error"]["code"] == ConfigError.code


def test_config_from_environment_through_the_cli(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """FLIGHTSYNC_CONFIG is read when --config is not given."""
    path = write(tmp_path, "cache: {ttl_active: 5}\n")
    monkeypatch.setenv("FLIGHTSYNC_CONFIG", str(path))
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 2
    assert str(path) in result.stderr and "cache.ttl_active" in result.stderr
