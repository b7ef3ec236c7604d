#!/usr/bin/env python3
"""A strict parser of the Prometheus text exposition format, version 0.0.4, for the tests.

    promparse.py FILE    parses FILE; on success prints one JSON object per sample
                         ({"name":…,"labels":{…},"value":…}) and exits 0; on the first fault
                         prints "LINE N: what is wrong" on stderr and exits 1.

Stricter than Prometheus itself where tobus's output must be tidy: every line is a comment, a
HELP, a TYPE or a sample; each family has one HELP and one TYPE, both before its samples, and its
samples are together; names and label names are valid; label values use only the three escapes;
no label twice; values are floats (or +Inf, -Inf, NaN); counters end in _total and are not
negative; a histogram's series each have buckets with `le`, increasing bounds, cumulative counts,
a +Inf bucket equal to its _count, and a _sum. The input ends with a line feed.
"""
import json
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
VALUE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]Inf|NaN")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class Fault(Exception):
    pass


def parse_labels(text, pos):
    """Labels from text[pos] == '{' to the closing '}': (dict, position after '}')."""
    labels = {}
    pos += 1
    while True:
        if pos < len(text) and text[pos] == "}":
            return labels, pos + 1
        m = LABEL.match(text, pos)
        if not m:
            raise Fault("bad label name at column %d" % (pos + 1))
        name = m.group(0)
        if name.startswith("__"):
            raise Fault("reserved label name %r" % name)
        if name in labels:
            raise Fault("label %r twice" % name)
        pos = m.end()
        if text[pos:pos + 2] != '="':
            raise Fault("expected =\" after label %r" % name)
        pos += 2
        value = []
        while True:
            if pos >= len(text):
                raise Fault("unterminated label value")
            c = text[pos]
            if c == "\\":
                nxt = text[pos + 1:pos + 2]
                if nxt not in ("\\", '"', "n"):
                    raise Fault("bad escape \\%s in a label value" % nxt)
                value.append("\n" if nxt == "n" else nxt)
                pos += 2
            elif c == '"':
                pos += 1
                break
            elif c == "\n":
                raise Fault("raw line feed in a label value")
            else:
                value.append(c)
                pos += 1
        labels[name] = "".join(value)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] == "}":
            continue
        else:
            raise Fault("expected , or } after a label value")


def parse_value(text):
    if not VALUE.fullmatch(text):
        raise Fault("bad value %r" % text)
    return float(text.replace("Inf", "inf"))


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
            return name[: -len(suffix)]
    return name


def check_histograms(samples, types):
    series = {}
    for s in samples:
        fam = family_of(s["name"], types)
        if types.get(fam) != "histogram":
            continue
        labels = dict(s["labels"])
        le = labels.pop("le", None)
        key = (fam, tuple(sorted(labels.items())))
        h = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if s["name"] == fam + "_bucket":
            if le is None:
                raise Fault("%s_bucket without le" % fam)
            h["buckets"].append((parse_value(le), s["value"]))
        elif le is not None:
            raise Fault("le on %s" % s["name"])
        elif s["name"] == fam + "_sum":
            h["sum"] = s["value"]
        elif s["name"] == fam + "_count":
            h["count"] = s["value"]
        else:
            raise Fault("sample %s in histogram %s" % (s["name"], fam))
    for (fam, labels), h in series.items():
        where = "%s%s" % (fam, dict(labels))
        bounds = [b for b, _ in h["buckets"]]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise Fault("%s: bucket bounds not increasing" % where)
        if not bounds or bounds[-1] != math.inf:
            raise Fault("%s: no +Inf bucket" % where)
        counts = [c for _, c in h["buckets"]]
        if any(b < a for a, b in zip(counts, counts[1:])):
            raise Fault("%s: buckets not cumulative" % where)
        if h["count"] is None or h["sum"] is None:
            raise Fault("%s: no _count or no _sum" % where)
        if counts[-1] != h["count"]:
            raise Fault("%s: +Inf bucket %g != _count %g" % (where, counts[-1], h["count"]))


def parse(text):
    if text and not text.endswith("\n"):
        raise Fault("no line feed at the end")
    helps, types, done, samples = {}, {}, set(), []
    current = None  # the family whose samples are being read
    for n, line in enumerate(text.split("\n")[:-1], 1):
        try:
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                    if len(parts) < 3 or not NAME.fullmatch(parts[2]):
                        raise Fault("%s without a valid metric name" % parts[1])
                    fam = parts[2]
                    if fam in done or fam == current:
                        raise Fault("%s of %s after its samples" % (parts[1], fam))
                    table = helps if parts[1] == "HELP" else types
                    if fam in table:
                        raise Fault("second %s of %s" % (parts[1], fam))
                    rest = parts[3] if len(parts) > 3 else ""
                    if parts[1] == "TYPE" and rest not in TYPES:
                        raise Fault("bad type %r" % rest)
                    if parts[1] == "HELP" and re.search(r"\\[^\\n]", rest.replace("\\\\", "")):
                        raise Fault("bad escape in HELP")
                    table[fam] = rest
                continue
            if line.strip() == "":
                raise Fault("empty line")
            m = NAME.match(line)
            if not m:
                raise Fault("not a comment and not a sample")
            name, pos, labels = m.group(0), m.end(), {}
            if pos < len(line) and line[pos] == "{":
                labels, pos = parse_labels(line, pos)
            if line[pos:pos + 1] != " ":
                raise Fault("expected a space before the value")
            fields = line[pos + 1:].split(" ")
            if len(fields) not in (1, 2):
                raise Fault("expected a value and at most a timestamp")
            value = parse_value(fields[0])
            if len(fields) == 2 and not re.fullmatch(r"-?[0-9]+", fields[1]):
                raise Fault("bad timestamp %r" % fields[1])
            fam = family_of(name, types)
            if fam not in types or fam not in helps:
                raise Fault("sample of %s before its HELP and TYPE" % fam)
            if fam != current:
                if fam in done:
                    raise Fault("samples of %s not together" % fam)
                if current is not None:
                    done.add(current)
                current = fam
            if types[fam] == "counter":
                if not name.endswith("_total"):
                    raise Fault("counter %s does not end in _total" % name)
                if value < 0 or math.isnan(value):
                    raise Fault("counter %s is %g" % (name, value))
            samples.append({"name": name, "labels": labels, "value": value})
        except Fault as e:
            raise Fault("line %d: %s: %s" % (n, e, line[:200]))
    keys = [(s["name"], tuple(sorted(s["labels"].items()))) for s in samples]
    if len(keys) != len(set(keys)):
        raise Fault("the same series twice")
    check_histograms(samples, types)
    return samples


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    try:
        samples = parse(text)
    except Fault as e:
        print(str(e), file=sys.stderr)
        return 1
    for s in samples:
        print(json.dumps(s, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
