// SPDX-License-Identifier: BSD-2-Clause
/*
 * log_html_assets.c - the inline stylesheet and script of `respec log html` (log_html.c).
 * Kept in the binary so the report is one self-contained file: no network, no external
 * assets.  The script only counts and filters what the page already holds; the test
 * (tests/kernel/log_cli.sh) checks its counts in headless Chromium.
 */

const char rs_log_html_css[] =
	"body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}\n"
	"h1{font-size:1.5em;margin:0 0 .3em}h2{border-top:2px solid #446;padding-top:.6em}\n"
	"h3{font-size:1.05em;margin:1.2em 0 .4em}small{color:#666;font-weight:normal}\n"
	".meta,.note{color:#555}#totals{margin:.5em 0 1em;font-weight:bold}\n"
	"table{border-collapse:collapse;margin:.3em 0}\n"
	"th,td{border:1px solid #ccd;padding:2px 6px;text-align:left;vertical-align:top}\n"
	"th{background:#eef}\n"
	".mono,table.listing td{font-family:ui-monospace,monospace;font-size:12px}\n"
	"table.listing td{border:none;padding:0 8px;white-space:pre}\n"
	"table.listing tr.srcline td{color:#275;font-style:italic}\n"
	"tr.insn.changed td{background:#fff3cd}tr.insn.left td{background:#fde2e2}\n"
	"tr.insn.right td{background:#e2f5e4}tr.fold td{background:#eef;color:#446}\n"
	"tr.annot td{color:#a40;white-space:normal!important}\n"
	"tr.remark.passed td:nth-child(2){color:#070}tr.remark.missed td:nth-child(2){color:#a60}\n"
	"tr.remark.analysis td:nth-child(2){color:#669}\n"
	".hidden{display:none}.guard{color:#446;font-size:12px}\n"
	"svg.plot{border:1px solid #ccd;background:#fafaff;margin:.3em 0}\n"
	"svg .axis{stroke:#888}svg .lbl{font-size:10px;fill:#444}\n"
	"svg .bar.before{fill:#999}svg .bar.after{fill:#36c}\n"
	"svg .bar.fired{fill:#36c}svg .bar.idle{fill:#bbc}\n"
	"svg.share rect{fill:#36c}\n";

const char rs_log_html_js[] =
	"(function () {\n"
	"  'use strict';\n"
	"  var secs = document.querySelectorAll('section.program');\n"
	"  var total = 0;\n"
	"  Array.prototype.forEach.call(secs, function (s) {\n"
	"    var n = s.querySelectorAll('tr.remark').length;\n"
	"    total += n;\n"
	"    var c = s.querySelector('.js-count');\n"
	"    if (c) c.textContent = n + ' remarks';\n"
	"    var boxes = s.querySelectorAll('.filters input');\n"
	"    function apply() {\n"
	"      Array.prototype.forEach.call(boxes, function (b) {\n"
	"        var t = b.getAttribute('data-type');\n"
	"        var rows = s.querySelectorAll('tr.remark.' + t + ', tr.annot.' + t);\n"
	"        Array.prototype.forEach.call(rows, function (r) {\n"
	"          r.classList.toggle('hidden', !b.checked);\n"
	"        });\n"
	"      });\n"
	"    }\n"
	"    Array.prototype.forEach.call(boxes, function (b) {\n"
	"      b.addEventListener('change', apply);\n"
	"    });\n"
	"    apply();\n"
	"  });\n"
	"  document.getElementById('js-programs').textContent = String(secs.length);\n"
	"  document.getElementById('js-remarks').textContent = String(total);\n"
	"  document.body.setAttribute('data-js', 'ok');\n"
	"})();\n";
