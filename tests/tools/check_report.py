#!/usr/bin/env python3
"""Checks the DOM of a lasgrad report as headless Chromium rendered it against the data the report
embeds and against the run's own metrics.jsonl, independently of the page's JavaScript:

  check_report.py REPORT.html DOM.html RUN_DIR EXAMPLE LAYER HEAD QUERY [SWEEP_RUNS]

- the explorer shows every position of example EXAMPLE, and the query cell is the stored query nearest
  QUERY;
- every position's weight (data-w) is the embedded byte / 255 * the row's scale for (EXAMPLE, LAYER,
  HEAD, that query), decoded here from the base64, and its red opacity is sqrt(weight / scale);
- pixel tasks: each position sits at its pixel's grid cell with the image's grey beneath;
- the selected head's card is HEAD;
- the loss and accuracy charts have one point per training line and per validation line of
  RUN_DIR/metrics.jsonl; a sweep's chart of every run has SWEEP_RUNS curves.
Prints the weights it checked (one line) so that two states can be compared; exits 1 naming the first
mismatch."""
import base64
import html.parser
import json
import math
import re
import sys


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


class Dom(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells, self.heads, self.paths, self.chart = [], [], {}, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = a.get("class", "").split()
        if "cell" in classes and "data-pos" in a:
            self.cells.append(a)
        if "head" in classes and "data-head" in a:
            self.heads.append(a)
        if tag == "svg" and "chart" in classes:
            self.chart = a.get("data-title")
            self.paths.setdefault(self.chart, [])
        if tag == "path" and "line" in classes and self.chart is not None:
            self.paths[self.chart].append(a)


def main():
    report, dom_file, run_dir = sys.argv[1:4]
    example, layer, head, query = map(int, sys.argv[4:8])
    sweep_runs = int(sys.argv[8]) if len(sys.argv) > 8 else None
    page = open(report, encoding="utf-8").read()
    m = re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S)
    if not m:
        fail(report + ": no embedded data")
    data = json.loads(m.group(1))
    dom = Dom()
    dom.feed(open(dom_file, encoding="utf-8").read())

    X = data["explorer"]
    x = X["examples"][example]
    n, queries = x["length"], x["queries"]
    qi = min(range(len(queries)), key=lambda i: (abs(queries[i] - query), i))
    scale = x["scale"][layer][head][qi]
    raw = base64.b64decode(x["weights"])
    if len(raw) != x["layers"] * x["heads"] * len(queries) * n:
        fail("the embedded weights have %d bytes, not layers x heads x queries x length" % len(raw))
    at = ((layer * x["heads"] + head) * len(queries) + qi) * n
    want = [raw[at + k] / 255 * scale for k in range(n)]
    if len(dom.cells) != n:
        fail("the explorer shows %d positions, example %d has %d" % (len(dom.cells), example, n))
    marked = [int(c["data-pos"]) for c in dom.cells if "query" in c["class"].split()]
    if marked != [queries[qi]]:
        fail("the query cell is %s, not the stored query %d nearest %d" % (marked, queries[qi], query))
    image = base64.b64decode(x["image"]) if "image" in x else None
    side = X["image_side"]
    for c in dom.cells:
        t = int(c["data-pos"])
        w = float(c["data-w"])
        if abs(w - want[t]) > 1e-12 * max(1.0, abs(want[t])):
            fail("position %d shows weight %r, the data hold %r" % (t, w, want[t]))
        style = c.get("style", "")
        red = re.search(r"rgba\(214, 39, 40, ([0-9.e-]+)\)", style)
        alpha = float(red.group(1)) if red else (1.0 if "rgb(214, 39, 40)" in style else None)
        if alpha is None:
            fail("position %d has no red weight colour in its style '%s'" % (t, style))
        expect = math.sqrt(want[t] / scale) if scale > 0 else 0.0
        if abs(alpha - expect) > 0.01:  # CSS keeps alpha in 8 bits and prints it to 2 decimals
            fail("position %d: red opacity %g, sqrt(weight / max) is %g" % (t, alpha, expect))
        if image is not None:
            p = X["order"][t]
            grid = re.search(r"grid-area: (\d+) / (\d+)", style)
            rc = (int(grid.group(1)), int(grid.group(2))) if grid else (
                int(re.search(r"grid-row: (\d+)", style).group(1)), int(re.search(r"grid-column: (\d+)", style).group(1)))
            if rc != (1 + p // side, 1 + p % side):
                fail("position %d is drawn at grid cell %s, its pixel %d is at %s" % (t, rc, p, (1 + p // side, 1 + p % side)))
            g = image[p]
            if "rgb(%d, %d, %d)" % (g, g, g) not in style:
                fail("position %d: the image's grey %d is not beneath it ('%s')" % (t, g, style))
    selected = [int(h["data-head"]) for h in dom.heads if "selected" in h["class"].split()]
    if selected != [head]:
        fail("the selected head card is %s, not %d" % (selected, head))
    if len(dom.heads) != x["heads"]:
        fail("%d head cards for %d heads" % (len(dom.heads), x["heads"]))

    train, val = [], []
    for line in open(run_dir + "/metrics.jsonl"):
        r = json.loads(line)
        (train if r["split"] == "train" else val if r["split"] == "val" else []).append(r)
    for title, name, rows in [("loss", "train", train), ("loss", "val", val), ("accuracy", "train", train), ("accuracy", "val", val)]:
        paths = [p for p in dom.paths.get(title, []) if p.get("data-name") == name]
        if len(paths) != 1 or int(paths[0]["data-points"]) != len(rows):
            fail("chart '%s' curve '%s': %s points, metrics.jsonl has %d lines" % (
                title, name, [p.get("data-points") for p in paths], len(rows)))
    if sweep_runs is not None and len(dom.paths.get("validation accuracy of every run", [])) != sweep_runs:
        fail("the sweep chart has %d curves, not %d" % (len(dom.paths.get("validation accuracy of every run", [])), sweep_runs))
    print(" ".join("%.9g" % w for w in want))


main()
