"""The HTML report's inline assets: its Content-Security-Policy, error recorder and CSS.

Everything is inline so the report is one file that works offline; the policy forbids
every network load, so nothing can be fetched even by mistake.
"""

from __future__ import annotations

__all__ = ["CSP", "ERROR_RECORDER", "STYLE"]

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)
ERROR_RECORDER = """(function () {
  var root = document.documentElement;
  function record(text) {
    root.setAttribute("data-errors", (root.getAttribute("data-errors") || "") + text + "\\n");
  }
  window.addEventListener("error", function (e) { record(String(e.message || e)); });
  window.addEventListener("unhandledrejection", function (e) {
    record("unhandled rejection: " + String(e.reason));
  });
})();"""
STYLE = """
:root { --go: #15803d; --nogo: #b91c1c; --inc: #a16207; --ink: #111827; --mute: #6b7280; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--ink); background: #f9fafb; }
main { max-width: 1200px; margin: 0 auto; padding: 0 20px 40px; }
header.verdict { color: #fff; padding: 18px 20px; }
header.go { background: var(--go); } header.nogo { background: var(--nogo); }
header.inconclusive { background: var(--inc); }
header h1 { margin: 0 auto; max-width: 1160px; font-size: 28px; }
header p { margin: 4px auto 0; max-width: 1160px; }
.headline { font-size: 18px; font-weight: 600; }
section { background: #fff; border: 1px solid #e5e7eb; border-radius: 6px; padding: 12px 16px;
  margin-top: 16px; }
#first-screen { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
#first-screen .wide { grid-column: 1 / -1; }
h2 { font-size: 18px; margin: 0 0 8px; } h3 { font-size: 15px; margin: 14px 0 6px; }
ul, ol { margin: 4px 0; padding-left: 20px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 4px 6px; text-align: left;
  vertical-align: top; }
th { background: #f3f4f6; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12px;
  overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 10px; font-size: 12px;
  font-weight: 600; color: #fff; }
.PASS { background: var(--go); } .FAIL { background: var(--nogo); }
.INCONCLUSIVE { background: var(--inc); }
.regression { color: var(--nogo); font-weight: 600; } .info { color: var(--inc); }
.noise, .ok, .mute { color: var(--mute); }
details { margin: 4px 0; } summary { cursor: pointer; }
mark.del { background: #fecaca; } mark.ins { background: #bbf7d0; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.charts svg { max-width: 100%; height: auto; border: 1px solid #e5e7eb; }
"""
