#!/usr/bin/env python3
"""grafana_check.py - checks packaging/grafana/sluice.json for t_grafana.sh.

  grafana_check.py DASHBOARD ALERTS RULES-OUT
      parses the dashboard (json), checks its structure (schema version, the
      data source variable every query uses, unique ids, the grid, the alert
      rules linked and named), and writes every PromQL expression in it
      (panel targets and template variable queries, Grafana's variables
      replaced by concrete values) as Prometheus alerting rules to RULES-OUT
      for `promtool check rules`; prints one line per expression.

  grafana_check.py DASHBOARD ALERTS RULES-OUT METRICS
      also checks each expression against METRICS, a scrape of a live
      sluice's /metrics: every metric name it reads must be a series sluice
      exports (or `up`, Prometheus's own), every label a selector matches on
      and every label of a `by (...)` list or a legend must be one of those
      metrics' labels (or job and instance, which Prometheus adds).

Exits 1 with one line per problem found, 0 when there is none.
"""
import json
import re
import sys

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


def substitute(expr, variables, where):
    def value(m):
        name = m.group(1) or m.group(2) or m.group(3)
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


def main(argv):
    if len(argv) not in (4, 5):
        sys.stderr.write(__doc__)
        return 2
    dash_path, alerts_path, rules_out = argv[1:4]
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
        concrete = substitute(expr, variables, where)
        rules.append({"alert": f"dashboard_expr_{i}", "expr": concrete,
                      "annotations": {"where": where}})
        checked.append((where, concrete, legend))
        print(f"{where}: {concrete}")
    with open(rules_out, "w", encoding="utf-8") as f:
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, indent=1)

    # ---- against a live /metrics
    if len(argv) == 5:
        live = read_metrics(argv[4])
        if not live:
            problem(argv[4], "no samples")
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

    for p in problems:
        print("PROBLEM " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
