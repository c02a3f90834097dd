"""The rules behind "the restore matches", on fingerprints built by hand (no server): what counts as a
difference per category, what a plausible row count is, when the newest write is too old, and how
a schema-only dump is described."""

from datetime import UTC, datetime, timedelta

from akko_dr.adapters.pg_fingerprint import describe_schema
from akko_dr.fidelity import categories, compare, implausible_rows, rows_only, stale_write
from akko_dr.ports import HASHED_AS_TEXT, POPULATED

T0 = datetime(2031, 1, 1, tzinfo=UTC)
ROWS = {"dashboards": {"rows": 40, "checksum": "12"}, "logs": {"rows": 2000, "checksum": "-7"}}
SCHEMA = """--
-- PostgreSQL database dump
--

\\restrict {key}

SET statement_timeout = 0;

--
-- Name: dashboards; Type: TABLE; Schema: public; Owner: {owner}
--

CREATE TABLE public.dashboards (
    id integer NOT NULL
);


ALTER TABLE public.dashboards OWNER TO {owner};

--
-- Name: TABLE dashboards; Type: ACL; Schema: public; Owner: {owner}
--

GRANT SELECT ON TABLE public.dashboards TO superset_app;


--
-- PostgreSQL database dump complete
--

\\unrestrict {key}
"""


def test_a_schema_only_dump_is_described_by_category_with_owners_apart() -> None:
    one = describe_schema(SCHEMA.format(key="abc", owner="superset"))
    assert one == describe_schema(SCHEMA.format(key="a-different-restrict-key", owner="superset"))
    assert set(one) == {"table definitions", "privileges", "ownership"}
    assert one["ownership"] == {"TABLE public.dashboards": "superset"}
    other = describe_schema(SCHEMA.format(key="abc", owner="postgres"))
    assert compare({}, one, {}, other) == ["ownership: differing TABLE public.dashboards"]


def test_each_category_names_what_is_missing_unexpected_or_differing() -> None:
    recorded = {"privileges": {"ACL a": "1", "ACL b": "2"}, "views": {"VIEW v": "3"}}
    restored = {"privileges": {"ACL b": "9", "ACL c": "4"}}
    assert compare(ROWS, recorded, ROWS, restored) == [
        "privileges: missing ACL a; unexpected ACL c; differing ACL b", "views: missing VIEW v"]
    assert categories(ROWS, recorded) == ["table rows", "privileges", "views"]


def test_a_sequence_may_be_ahead_of_the_record_but_never_behind() -> None:
    recorded = {"sequences": {"public.logs_id_seq": "2000"}}
    assert compare({}, recorded, {}, {"sequences": {"public.logs_id_seq": "2004"}}) == []
    assert compare({}, recorded, {}, {"sequences": {"public.logs_id_seq": "0"}}) == [
        "sequences: behind public.logs_id_seq"]


def test_an_older_manifest_without_a_catalog_compares_rows_only() -> None:
    assert compare(ROWS, {}, ROWS, {"privileges": {"ACL a": "1"}}) == []
    changed = ROWS | {"logs": {"rows": 2000, "checksum": "8"}}
    assert compare(ROWS, {}, changed, {}) == ["table rows: differing logs"]


def test_a_checksum_an_older_manifest_bound_to_oids_compares_by_row_count_only() -> None:
    """Before HASHED_AS_TEXT a table with an enum column was hashed by its labels' OIDs."""
    moods = {"rows": 3, "checksum": "991"}
    now = {"rows": 3, "checksum": "-4"} | HASHED_AS_TEXT
    assert compare({"moods": moods}, {}, {"moods": now}, {}) == []
    assert rows_only({"moods": moods} | ROWS, {"moods": now} | ROWS) == ["moods"]
    assert compare({"moods": moods}, {}, {"moods": now | {"rows": 2}}, {}) == ["table rows: differing moods"]
    assert compare({"moods": now}, {}, {"moods": now | {"checksum": "5"}}, {}) == [
        "table rows: differing moods"]


def test_a_plausible_row_count_is_not_zero_and_within_the_ratio_of_the_source() -> None:
    source = ROWS | {"empty": {"rows": 0, "checksum": "0"}, "dr_canary": {"rows": 90, "checksum": "1"},
                     "slices": {"rows": 160, "checksum": "5"}}
    restored = {"dashboards": {"rows": 20, "checksum": "1"}, "logs": {"rows": 999, "checksum": "2"},
                "empty": {"rows": 0, "checksum": "0"}}
    assert implausible_rows(source, restored, {"slices"}, 0.5) == [
        "logs has 999 rows, the source 2000 (at least 0.5x expected)"]
    assert implausible_rows(source, restored, set(), 0.5)[-1] == "slices missing"
    assert implausible_rows(source, {t: {"rows": 0} for t in source}, {"slices"}, 0.5) == [
        "dashboards has 0 rows, the source 40 (at least 0.5x expected)",
        "logs has 0 rows, the source 2000 (at least 0.5x expected)"]


def test_the_newest_restored_write_must_be_within_the_job_interval_of_the_backup_time() -> None:
    hour = timedelta(hours=1)
    assert stale_write(T0 - hour, T0 + hour, T0, 2 * hour) is None
    assert "older than the backup time" in stale_write(T0 - 3 * hour, T0 + hour, T0, 2 * hour)
    assert stale_write(None, T0, T0, hour).startswith("no write restored, although the source has writes")
    assert stale_write(None, None, T0, hour) is None  # a database no canary writes to: nothing to judge by


def test_a_materialized_view_is_compared_by_being_populated_even_against_a_manifest_with_its_rows() -> None:
    recorded = {**ROWS, "chart_counts": {"rows": 7, "checksum": "3"}}  # a manifest from before POPULATED
    assert compare(recorded, {}, {**ROWS, "chart_counts": POPULATED}, {}) == []
    assert compare({**ROWS, "chart_counts": POPULATED}, {}, ROWS, {}) == ["table rows: missing chart_counts"]
    assert implausible_rows({**ROWS, "chart_counts": POPULATED}, ROWS, set(), 0.5) == ["chart_counts missing"]
    assert implausible_rows({**ROWS, "chart_counts": POPULATED}, {**ROWS, "chart_counts": POPULATED},
                            set(), 0.5) == []
