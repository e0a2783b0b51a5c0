#!/usr/bin/env python3
"""grafana_check.py - checks packaging/grafana/sluice.json for t_grafana.sh.

  grafana_check.py DASHBOARD ALERTS --rules OUT [--metrics FILE]
                   [--prometheus URL] [--var NAME=VALUE ...]

Parses the dashboard (json) and checks its structure: the schema version,
the one data source variable every query uses, unique ids, the grid, the
alert rules of ALERTS linked and each one named.  Every PromQL expression
in it (panel targets and template variable queries, Grafana's variables
replaced by concrete values: --var's, or placeholders that only have to
parse) goes to OUT as a Prometheus alerting rule, for `promtool check
rules`; one line per expression is printed.

--metrics FILE, a scrape of a live sluice's /metrics: every metric name an
expression reads must be a series sluice exports (or `up`, Prometheus's
own); every label a selector matches on, every label of a `by (...)` list
and of a legend must be one of those metrics' labels (or job and instance,
which Prometheus adds).

--prometheus URL, a Prometheus scraping that sluice: every expression is
queried as Grafana would (with --var's values) and must return at least
one series; each template variable's values are printed.

Exits 1 with one PROBLEM line per problem found, 0 when there is none.
"""
import argparse
import json
import re
import sys
import urllib.parse
import urllib.request

# What Grafana substitutes itself; the values only have to parse.
BUILTINS = {"__rate_interval": "1m", "__interval": "30s", "__interval_ms": "30000",
            "__range": "1h", "__range_s": "3600", "__range_ms": "3600000"}
# Prometheus's series and the labels it adds to every scraped one.
PROM_METRICS = {"up"}
TARGET_LABELS = {"job", "instance"}
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "offset", "bool", "inf", "nan"}

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def substitute(expr, variables, given, where):
    def value(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in given:
            return given[name]
        if name in BUILTINS:
            return BUILTINS[name]
        if name in variables:
            return f"value-of-{name}"
        problem(where, f"unknown variable ${name} in {expr!r}")
        return "x"
    pattern = r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)"
    return re.sub(pattern, value, expr)


def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)


def analyse(expr):
    """(metrics, selectors, grouping labels) of a PromQL expression:
    selectors is a list of (metric name or None, [label names matched])."""
    e = strip_strings(expr)
    e = re.sub(r"\[[^\]]*\]", "", e)                     # ranges, subqueries
    grouping = []
    for m in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", e):
        grouping += [g.strip() for g in m.group(1).split(",") if g.strip()]
    # gone with their lists, so that an aggregation reads as a call: sum (...)
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    selectors = []
    for m in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}", e):
        labels = re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", m.group(2))
        selectors.append((m.group(1), labels))
    e = re.sub(r"\{[^}]*\}", " ", e)
    metrics = set()
    for m in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)\s*(\()?", e):
        name, call = m.group(1), m.group(2)
        if call or name in KEYWORDS:
            continue
        metrics.add(name)
    metrics |= {s for s, _ in selectors if s}
    return metrics, selectors, grouping


def read_metrics(path):
    """{series name: set of label names} of a /metrics scrape."""
    out = {}
    for line in open(path, encoding="utf-8"):
        if not line.strip() or line.startswith("#"):
            continue
        m = re.match(r"([A-Za-z_:][\w:]*)(\{.*\})?\s", line)
        if not m:
            continue
        labels = set(re.findall(r'([A-Za-z_]\w*)="', strip_labels(m.group(2) or "")))
        out.setdefault(m.group(1), set()).update(labels)
    return out


def strip_labels(s):
    # label values may hold anything quoted: keep the names and empty values
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', s)


def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))


def query(url, expr):
    """The series an instant query of expr returns now, or an error text."""
    q = urllib.parse.urlencode({"query": expr}).encode()
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/api/v1/query", q, timeout=10) as r:
            answer = json.load(r)
    except Exception as err:            # an HTTP 400 carries Prometheus's reason
        body = getattr(err, "read", lambda: b"")().decode(errors="replace")
        return None, f"{err} {body}"
    if answer.get("status") != "success":
        return None, str(answer)
    data = answer["data"]
    return (data["result"] if data["resultType"] in ("vector", "matrix") else [data["result"]]), ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dashboard")
    ap.add_argument("alerts")
    ap.add_argument("--rules", required=True)
    ap.add_argument("--metrics")
    ap.add_argument("--prometheus")
    ap.add_argument("--var", action="append", default=[])
    args = ap.parse_args()
    dash_path, alerts_path, rules_out = args.dashboard, args.alerts, args.rules
    given = dict(v.split("=", 1) for v in args.var)
    try:
        dash = json.load(open(dash_path, encoding="utf-8"))
    except ValueError as err:
        print(f"{dash_path}: not JSON: {err}")
        return 1

    # ---- structure
    sv = dash.get("schemaVersion")
    if not isinstance(sv, int) or not 36 <= sv <= 41:
        problem("schemaVersion", f"expected 36..41 (Grafana 9 and 10), got {sv!r}")
    if "__inputs" in dash:
        problem("__inputs", "the data source is a template variable; __inputs breaks provisioning")
    tvars = dash.get("templating", {}).get("list", [])
    variables = {v.get("name") for v in tvars}
    ds = [v for v in tvars if v.get("type") == "datasource"]
    if len(ds) != 1 or ds[0].get("query") != "prometheus":
        problem("templating", "expected one datasource variable of type prometheus")
    ds_ref = {"type": "prometheus", "uid": "${%s}" % (ds[0]["name"] if ds else "datasource")}
    for need in ("job", "instance"):
        if need not in variables:
            problem("templating", f"expected a variable {need}")

    exprs = []                      # (where, expression as Grafana sends it)
    for v in tvars:
        if v.get("type") != "query":
            continue
        where = f"variable {v.get('name')}"
        if v.get("datasource") != ds_ref:
            problem(where, f"expected datasource {ds_ref}, got {v.get('datasource')}")
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q or "")
        m2 = re.fullmatch(r"\s*query_result\((.*)\)\s*", q or "")
        if m:
            exprs.append((where, m.group(1), {m.group(2)}))
        elif m2:
            exprs.append((where, m2.group(1), set()))
        else:
            problem(where, f"expected label_values(SELECTOR, LABEL) or query_result(), got {q!r}")

    ids = set()
    for p in walk(dash.get("panels", [])):
        where = f"panel {p.get('id')} {p.get('title')!r}"
        if p.get("id") in ids or not isinstance(p.get("id"), int):
            problem(where, "panel ids must be unique integers")
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "hwxy") or g["x"] + g["w"] > 24:
            problem(where, f"gridPos must lie within 24 columns, got {g}")
        targets = p.get("targets", [])
        if targets and p.get("datasource") != ds_ref:
            problem(where, f"expected datasource {ds_ref}, got {p.get('datasource')}")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            problem(where, f"refIds repeat: {refs}")
        for t in targets:
            if t.get("datasource") != ds_ref:
                problem(where, f"target {t.get('refId')}: expected datasource {ds_ref}")
            if not t.get("expr"):
                problem(where, f"target {t.get('refId')} has no expr")
                continue
            legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat", "")))
            exprs.append((f"{where} {t.get('refId')}", t["expr"], legend))

    # the alert rules: linked, listed, every one named on the dashboard
    alerts = re.findall(r"^\s*- alert:\s*(\w+)", open(alerts_path, encoding="utf-8").read(), re.M)
    if not alerts:
        problem(alerts_path, "no alerts found")
    texts = " ".join(p.get("options", {}).get("content", "")
                     for p in walk(dash.get("panels", [])) if p.get("type") == "text")
    if "packaging/prometheus/sluice-alerts.yml" not in texts:
        problem("text panels", "expected one naming packaging/prometheus/sluice-alerts.yml")
    for a in alerts:
        if not re.search(r"\b%s\b" % a, texts):
            problem("text panels", f"alert {a} of {alerts_path} is not named")
    if not any(p.get("type") == "alertlist" for p in walk(dash.get("panels", []))):
        problem("panels", "expected an alertlist panel")
    if not any("/alerting/list" in (link.get("url") or "") for link in dash.get("links", [])):
        problem("links", "expected a link to Grafana's alert list")

    # ---- every expression, substituted, as a rule for promtool
    rules = []
    checked = []
    for i, (where, expr, legend) in enumerate(exprs):
        concrete = substitute(expr, variables, given, where)
        rules.append({"alert": f"dashboard_expr_{i}", "expr": concrete,
                      "annotations": {"where": where}})
        checked.append((where, concrete, legend))
        print(f"{where}: {concrete}")
    with open(rules_out, "w", encoding="utf-8") as f:
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, indent=1)

    # ---- against a live /metrics
    if args.metrics:
        live = read_metrics(args.metrics)
        if not live:
            problem(args.metrics, "no samples")
        for where, expr, legend in checked:
            metrics, selectors, grouping = analyse(expr)
            if not metrics:
                problem(where, f"reads no metric: {expr}")
            known = set(TARGET_LABELS)
            for name in metrics:
                if name in PROM_METRICS:
                    continue
                if name not in live:
                    problem(where, f"{name} is not a series sluice exports (expr {expr})")
                else:
                    known |= live[name]
            for name, labels in selectors:
                have = (live.get(name, set()) | TARGET_LABELS) if name in live else None
                for label in labels:
                    if have is not None and label not in have:
                        problem(where, f"{name} has no label {label} (it has {sorted(have)})")
            for label in set(grouping) | legend:
                if label not in known and label != "le":
                    problem(where, f"label {label} (grouping or legend) is on none of "
                                   f"{sorted(metrics)}")
        print(f"{len(checked)} expressions checked against {len(live)} series names")
        read = set()
        for _, expr, _ in checked:
            read |= analyse(expr)[0]
        # not a problem: a metric can be left out on purpose; shown so
        # that one added to sluice is a decision
        print("not on the dashboard: " + " ".join(sorted(set(live) - read)))

    # ---- run by a Prometheus that scrapes it
    if args.prometheus:
        for (where, expr, legend), (_, concrete, _) in zip(exprs, checked):
            result, err = query(args.prometheus, concrete)
            if result is None:
                problem(where, f"Prometheus rejects {concrete}: {err}")
            elif not result:
                problem(where, f"no series for {concrete}")
            elif where.startswith("variable "):
                label = next(iter(legend))
                values = sorted({r["metric"].get(label, "") for r in result})
                print(f"{where} = {'|'.join(values)}")
        print(f"{len(checked)} expressions queried")

    for p in problems:
        print("PROBLEM " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
