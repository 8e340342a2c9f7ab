#!/usr/bin/env python3
"""Run the unit tests of Panther detections as `panther_analysis_tool test` does.

Panther's own CLI (panther_analysis_tool, on PyPI) is the reference: run it before
uploading. This runner exists for machines that cannot install it; it needs Python 3
and PyYAML only (Debian: python3-yaml). For each rule YAML under --path it:

  * checks the metadata as the CLI's schema does (required keys, known keys only,
    types, severities, log type names, Custom.* log types);
  * imports the rule's Python module (Filename, beside the YAML);
  * wraps each test's Log in an event offering get() and deep_get(), as Panther's
    PantherEvent does (read-only; no other helper, so a rule that passes here uses
    nothing Panther lacks), calls rule() and compares it with ExpectedResult;
  * when rule() matched, calls title, dedup, severity, alert_context, description,
    reference, runbook and destinations where defined and checks what they return;
  * with --schema, checks each test Log against the custom log schema: every field
    declared, of the declared type, the required ones present;
  * with --min-tests N (default 2), wants N tests per rule, a true and a false one.

It prints one line per test and exits 1 when anything failed.

    python3 deploy/panther/pat_test.py --path deploy/panther/rules \\
        --schema deploy/panther/schemas/pantherscim_audit.yml
"""

import argparse
import importlib.util
import json
import os
import re
import sys
from collections.abc import Mapping

try:
    import yaml
except ImportError:  # pragma: no cover - the message is the point
    sys.exit("pat_test.py needs PyYAML: apt-get install python3-yaml (or pip install pyyaml)")

# The keys of a rule's YAML, as panther_analysis_tool's RULE_SCHEMA has them.
REQUIRED = {"AnalysisType", "Enabled", "RuleID", "LogTypes", "Severity"}
OPTIONAL = {
    "Filename", "Description", "DedupPeriodMinutes", "InlineFilters", "DisplayName",
    "OnlyUseBaseRiskScore", "OutputIds", "Reference", "Runbook", "SummaryAttributes",
    "Threshold", "Tags", "Reports", "Tests", "DynamicSeverities", "AlertTitle",
    "AlertContext", "GroupBy", "CreateAlert",
}
TEST_KEYS = {"Name", "LogType", "ExpectedResult", "Log", "Mocks"}
SEVERITIES = {"Info", "Low", "Medium", "High", "Critical"}
DYNAMIC_SEVERITIES = {"INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL", "DEFAULT"}
NAME_RE = re.compile(r'^[^<>&"%]+$')
CUSTOM_LOG_TYPE_RE = re.compile(r"^Custom\.([A-Z][A-Za-z0-9]*)(\.[A-Z][A-Za-z0-9]*){0,5}$")
MAX_DEDUP = 1000
MAX_TITLE = 1000


class ImmutableDict(Mapping):
    """A read-only mapping whose nested dicts and lists are read-only too."""

    def __init__(self, data):
        self._data = data

    def __getitem__(self, key):
        return _freeze(self._data[key])

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)

    def get(self, key, default=None):
        return _freeze(self._data.get(key, default))

    def __repr__(self):
        return f"ImmutableDict({self._data!r})"


class PantherEvent(ImmutableDict):
    """What a rule receives: the log, with get() and deep_get() as Panther's event."""

    def deep_get(self, *keys, default=None):
        value = self._data
        for key in keys:
            if not isinstance(value, Mapping):
                return default
            value = value.get(key)
            if value is None:
                return default
        return _freeze(value)


def _freeze(value):
    if isinstance(value, dict):
        return ImmutableDict(value)
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value):
    """Plain JSON values again, for json.dumps of an alert context."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    return value


# ---- metadata ------------------------------------------------------------------

def check_metadata(spec, yml_path):
    problems = []
    if spec.get("AnalysisType") not in ("rule", "scheduled_rule"):
        return [f"AnalysisType {spec.get('AnalysisType')!r}: this runner tests rules only"]
    missing = REQUIRED - spec.keys()
    if missing:
        problems.append(f"missing required keys: {sorted(missing)}")
    if "Filename" not in spec:
        problems.append("Filename is required (a Python rule)")
    unknown = spec.keys() - REQUIRED - OPTIONAL
    if unknown:
        problems.append(f"unknown keys (panther_analysis_tool refuses them): {sorted(unknown)}")
    if not isinstance(spec.get("Enabled"), bool):
        problems.append("Enabled must be true or false")
    if not isinstance(spec.get("RuleID"), str) or not NAME_RE.match(spec.get("RuleID", "")):
        problems.append("RuleID must be a string without <>&\"%")
    if "DisplayName" in spec and (not isinstance(spec["DisplayName"], str) or not NAME_RE.match(spec["DisplayName"])):
        problems.append("DisplayName must be a string without <>&\"%")
    if spec.get("Severity") not in SEVERITIES:
        problems.append(f"Severity must be one of {sorted(SEVERITIES)}")
    log_types = spec.get("LogTypes")
    if not isinstance(log_types, list) or not log_types or not all(isinstance(t, str) for t in log_types):
        problems.append("LogTypes must be a list of log type names")
    else:
        for t in log_types:
            if t.startswith("Custom.") and not CUSTOM_LOG_TYPE_RE.match(t):
                problems.append(f"log type {t!r} is not a valid custom log type name")
    for key in ("Threshold", "DedupPeriodMinutes"):
        if key in spec and (not isinstance(spec[key], int) or isinstance(spec[key], bool) or spec[key] < 1):
            problems.append(f"{key} must be a positive integer")
    for key in ("Tags", "SummaryAttributes", "OutputIds"):
        if key in spec and not (isinstance(spec[key], list) and all(isinstance(v, str) for v in spec[key])):
            problems.append(f"{key} must be a list of strings")
    for key in ("Description", "Reference", "Runbook"):
        if key in spec and not isinstance(spec[key], str):
            problems.append(f"{key} must be a string")
    if "Reports" in spec and not (isinstance(spec["Reports"], dict)
                                  and all(isinstance(v, list) for v in spec["Reports"].values())):
        problems.append("Reports must map report names to lists")
    tests = spec.get("Tests", [])
    if not isinstance(tests, list):
        problems.append("Tests must be a list")
        tests = []
    for i, t in enumerate(tests):
        if not isinstance(t, dict):
            problems.append(f"test {i + 1} is not a mapping")
            continue
        extra = t.keys() - TEST_KEYS
        if extra:
            problems.append(f"test {i + 1}: unknown keys {sorted(extra)}")
        if not isinstance(t.get("Name"), str):
            problems.append(f"test {i + 1}: Name must be a string")
        if not isinstance(t.get("ExpectedResult"), bool):
            problems.append(f"test {i + 1}: ExpectedResult must be true or false")
        if not isinstance(t.get("Log"), dict):
            problems.append(f"test {i + 1}: Log must be a mapping")
    if spec.get("Filename") and not os.path.isfile(os.path.join(os.path.dirname(yml_path), spec["Filename"])):
        problems.append(f"Filename {spec['Filename']!r} does not exist beside the YAML")
    return problems


# ---- schema ---------------------------------------------------------------------

def check_against_schema(value, fields, path=""):
    """Problems of a JSON object against a list of schema FieldSchemas."""
    problems = []
    declared = {f["name"]: f for f in fields}
    for f in fields:
        if f.get("required") and f["name"] not in value:
            problems.append(f"{path}{f['name']}: required, missing")
    for key, v in value.items():
        f = declared.get(key)
        if f is None:
            problems.append(f"{path}{key}: not declared in the schema")
            continue
        problems += check_value(v, f, f"{path}{key}")
    return problems


def check_value(v, f, path):
    if v is None:
        return []
    t = f["type"]
    ok = {
        "string": lambda: isinstance(v, str),
        "boolean": lambda: isinstance(v, bool),
        "bigint": lambda: isinstance(v, int) and not isinstance(v, bool),
        "int": lambda: isinstance(v, int) and not isinstance(v, bool) and -2**31 <= v < 2**31,
        "smallint": lambda: isinstance(v, int) and not isinstance(v, bool) and -2**15 <= v < 2**15,
        "float": lambda: isinstance(v, (int, float)) and not isinstance(v, bool),
        "timestamp": lambda: isinstance(v, str) and RFC3339_RE.match(v) is not None,
        "json": lambda: True,
        "object": lambda: isinstance(v, dict),
        "array": lambda: isinstance(v, list),
    }.get(t)
    if ok is None:
        return [f"{path}: the schema's type {t!r} is unknown to this runner"]
    if not ok():
        return [f"{path}: {v!r} is not a {t}"]
    if t == "object":
        return check_against_schema(v, f.get("fields", []), path + ".")
    if t == "array":
        out = []
        for i, e in enumerate(v):
            out += check_value(e, f["element"], f"{path}[{i}]")
        return out
    return []


RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


# ---- running a rule -------------------------------------------------------------

def load_module(py_path, name):
    spec = importlib.util.spec_from_file_location(name, py_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_aux(module, event):
    """Calls the optional functions a matched rule has; returns problems."""
    problems = []

    def call(fn_name, check, what):
        fn = getattr(module, fn_name, None)
        if fn is None:
            return
        try:
            out = fn(event)
        except Exception as e:  # noqa: BLE001 - any exception is a failed test, as in Panther
            problems.append(f"{fn_name}() raised {type(e).__name__}: {e}")
            return
        if not check(out):
            problems.append(f"{fn_name}() returned {out!r}, want {what}")

    call("title", lambda v: isinstance(v, str) and 0 < len(v) <= MAX_TITLE, f"a non-empty string of at most {MAX_TITLE}")
    call("dedup", lambda v: isinstance(v, str) and 0 < len(v) <= MAX_DEDUP, f"a non-empty string of at most {MAX_DEDUP}")
    call("severity", lambda v: isinstance(v, str) and v.upper() in DYNAMIC_SEVERITIES, f"one of {sorted(DYNAMIC_SEVERITIES)}")
    call("description", lambda v: isinstance(v, str), "a string")
    call("reference", lambda v: isinstance(v, str), "a string")
    call("runbook", lambda v: isinstance(v, str), "a string")
    call("destinations", lambda v: isinstance(v, list) and all(isinstance(d, str) for d in v), "a list of strings")

    def json_dict(v):
        if not isinstance(v, Mapping):
            return False
        try:
            json.dumps(_thaw(v))
        except (TypeError, ValueError):
            return False
        return True

    call("alert_context", json_dict, "a JSON-serialisable dict")
    return problems


def test_rule(yml_path, schema_fields, min_tests, out):
    with open(yml_path, encoding="utf-8") as fh:
        spec = yaml.safe_load(fh)
    rule_id = spec.get("RuleID", yml_path) if isinstance(spec, dict) else yml_path
    if not isinstance(spec, dict):
        out.append((False, f"{yml_path}: not a YAML mapping"))
        return
    problems = check_metadata(spec, yml_path)
    tests = spec.get("Tests") or []
    results = {t.get("ExpectedResult") for t in tests if isinstance(t, dict)}
    if len(tests) < min_tests or (min_tests >= 2 and results != {True, False}):
        problems.append(f"wants at least {min_tests} tests, with a true and a false one")
    if problems:
        for p in problems:
            out.append((False, f"{rule_id}: {p}"))
        return
    module = load_module(os.path.join(os.path.dirname(yml_path), spec["Filename"]),
                         "pat_rule_" + re.sub(r"\W", "_", rule_id))
    if not callable(getattr(module, "rule", None)):
        out.append((False, f"{rule_id}: the module has no rule(event) function"))
        return
    for t in tests:
        name, log, want = t["Name"], t["Log"], t["ExpectedResult"]
        failures = []
        if schema_fields is not None:
            failures += [f"Log: {p}" for p in check_against_schema(log, schema_fields)]
        event = PantherEvent(log)
        try:
            got = module.rule(event)
        except Exception as e:  # noqa: BLE001
            failures.append(f"rule() raised {type(e).__name__}: {e}")
            got = None
        if got is not None and not isinstance(got, bool):
            failures.append(f"rule() returned {type(got).__name__}, expected bool")
        elif got is not None and got != want:
            failures.append(f"rule() returned {got}, ExpectedResult is {want}")
        if got is True:
            failures += run_aux(module, event)
        if failures:
            for f in failures:
                out.append((False, f"{rule_id} / {name}: {f}"))
        else:
            out.append((True, f"{rule_id} / {name}"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--path", default=os.path.join(os.path.dirname(__file__), "rules"),
                    help="directory of rule YAML and Python files (searched recursively)")
    ap.add_argument("--schema", help="custom log schema YAML to check each test Log against")
    ap.add_argument("--min-tests", type=int, default=2, help="tests each rule needs (2: a true and a false one)")
    args = ap.parse_args(argv)

    schema_fields = None
    if args.schema:
        with open(args.schema, encoding="utf-8") as fh:
            schema_fields = yaml.safe_load(fh)["fields"]
    ymls = []
    for root, _, files in os.walk(args.path):
        ymls += [os.path.join(root, f) for f in files if f.endswith((".yml", ".yaml"))]
    if not ymls:
        print(f"no rule YAML under {args.path}")
        return 1
    out = []
    seen = {}
    for y in sorted(ymls):
        with open(y, encoding="utf-8") as fh:
            rid = (yaml.safe_load(fh) or {}).get("RuleID")
        if rid in seen:
            out.append((False, f"{y}: RuleID {rid} is also {seen[rid]}'s"))
        seen[rid] = y
        test_rule(y, schema_fields, args.min_tests, out)
    failed = [line for ok, line in out if not ok]
    for ok, line in out:
        print(("PASS  " if ok else "FAIL  ") + line)
    print(f"{len(seen)} rules, {sum(1 for ok, _ in out if ok)} tests passed, {len(failed)} failures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
