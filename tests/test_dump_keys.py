"""Dump names come from the policy's storage.dump_key template; a template that cannot name dumps is
refused at load time, naming the key."""

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest
import yaml

from akko_dr.backup import dump_key, globals_key
from akko_dr.dump_keys import compile_template
from akko_dr.errors import PolicyError
from akko_dr.policy import DEFAULT_POLICY, load_policy

WHEN = datetime(2031, 7, 4, 13, 5, 9, tzinfo=UTC)


def test_the_default_template_names_dumps_as_akkos_cronjobs_do() -> None:
    policy = load_policy()
    assert dump_key(policy, "aden", WHEN) == "pg/aden_20310704130509.sql.gz"
    assert globals_key(policy, WHEN) == "pg/_globals_20310704130509.sql.gz"
    name = policy.storage.dump_key.parse("aden_extra_20310704130509.sql.gz")
    assert (name.database, name.taken_at, name.format) == ("aden_extra", WHEN, "sql.gz")
    assert policy.storage.dump_key.parse("aden_20310704130509.sql.gz.bak") is None
    assert policy.storage.dump_key.parse("aden_20311304130509.sql.gz") is None  # month 13


def test_a_template_with_a_format_names_custom_format_dumps_too() -> None:
    template = compile_template("{database}/{timestamp:%Y-%m-%dT%H%M%SZ}.{format}")
    key = template.key("superset_metadata", WHEN, "dump")
    assert key == "superset_metadata/2031-07-04T130509Z.dump"
    assert template.parse(key).format == "dump"
    assert template.parse("superset_metadata/2031-07-04T130509Z.sql.gz").format == "sql.gz"
    assert template.prefix("superset_metadata") == "superset_metadata/"


@pytest.mark.parametrize("template, says", [
    ("{db}_{timestamp}.sql.gz", "field {db} is unknown"),
    ("{database}.sql.gz", "must contain {database} and {timestamp}"),
    ("{database}_{timestamp:%Q}.sql.gz", "%Q is not a supported time directive"),
    ("{database}_{timestamp.sql.gz", "is not a key template"),
])
def test_a_template_that_cannot_name_dumps_is_refused_naming_the_key(tmp_path: Path, template: str,
                                                                    says: str) -> None:
    raw = yaml.safe_load(resources.files("akko_dr.policies").joinpath(DEFAULT_POLICY).read_text())
    raw["storage"]["dump_key"] = template
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PolicyError, match=r"storage\.dump_key: ") as err:
        load_policy(path)
    assert says in str(err.value)
