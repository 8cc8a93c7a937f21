"""The review page (one HTML file, no external resources): structure table, three views, decisions, DVH, export.

Every control carries a ``data-testid``. Keys: ``n``/``↓`` next structure, ``p``/``↑`` previous, ``a`` approve,
``e`` needs edit, ``r`` reject (not while typing a comment).
"""

PAGE = r"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Contour review</title>
<style>
body{font-family:sans-serif;margin:0;display:flex;height:100vh;color:#222}
#left{width:560px;overflow:auto;border-right:1px solid #ccc;padding:8px}
#right{flex:1;overflow:auto;padding:8px}
table{border-collapse:collapse;width:100%;font-size:13px}
td,th{border-bottom:1px solid #ddd;padding:3px 6px;text-align:right}
td:first-child,th:first-child,td.name{text-align:left}
tr.sel{background:#dbeafe}
tr{cursor:pointer}
.sw{display:inline-block;width:11px;height:11px;margin-right:5px;border:1px solid #666}
.approved{color:#15803d;font-weight:bold}.needs-edit{color:#b45309;font-weight:bold}.rejected{color:#b91c1c;font-weight:bold}
.views{display:flex;gap:6px;flex-wrap:wrap}
.views figure{margin:0}.views img{width:384px;height:384px;background:#000;display:block}
figcaption{font-size:12px;color:#555}
button{margin:2px;padding:4px 10px}
textarea{width:100%;height:48px}
#msg{font-size:12px;color:#555;min-height:1em}
</style></head>
<body>
<div id="left">
 <div><b>Contour review</b> · reviewer <input id="reviewer" data-testid="reviewer-box" size="12"></div>
 <div id="warnings" data-testid="warnings" style="font-size:12px;color:#b91c1c"></div>
 <div style="margin:6px 0">
  <button data-testid="prev-button" onclick="move(-1)">◀ previous (p)</button>
  <button data-testid="next-button" onclick="move(1)">next (n) ▶</button>
  window <select data-testid="window-preset" id="window" onchange="draw()">
   <option value="">thorax</option><option>Lung</option><option>Mediastinum</option><option>Bone</option>
   <option>Brain</option><option>Abdomen</option></select>
 </div>
 <table><thead><tr><th>structure</th><th>status</th><th>Dice</th><th>HD95 mm</th><th>surf. Dice</th>
  <th>vol. diff %</th></tr></thead><tbody id="rows"></tbody></table>
 <div style="margin-top:8px">
  <textarea id="comment" data-testid="comment-box" placeholder="comment"></textarea><br>
  <button data-testid="approve-button" onclick="decide('approved')">approve (a)</button>
  <button data-testid="needs-edit-button" onclick="decide('needs-edit')">needs edit (e)</button>
  <button data-testid="reject-button" onclick="decide('rejected')">reject (r)</button>
  <button data-testid="export-button" onclick="exportAll()">Export</button>
 </div>
 <div id="measuring" data-testid="measuring" style="font-size:12px;color:#b45309"></div>
 <div id="msg" data-testid="message"></div>
 <div id="exports" data-testid="exports"></div>
</div>
<div id="right">
 <div id="title" data-testid="selected-structure"></div>
 <div class="views">
  <figure><img id="axial" data-testid="view-axial" alt="axial"><figcaption>axial (patient right on the left)
   · <span id="pos-axial"></span></figcaption></figure>
  <figure><img id="coronal" data-testid="view-coronal" alt="coronal"><figcaption>coronal · <span id="pos-coronal">
   </span></figcaption></figure>
  <figure><img id="sagittal" data-testid="view-sagittal" alt="sagittal"><figcaption>sagittal · <span
   id="pos-sagittal"></span></figcaption></figure>
 </div>
 <div style="font-size:12px">reference: solid outline in the structure's colour; test: white dashes</div>
 <img id="dvh" data-testid="dvh" alt="DVH" style="display:none;margin-top:8px">
</div>
<script>
const token = new URLSearchParams(location.search).get("token");
function api(path){ return token ? path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : path; }
let rows = [], selected = null, focus = null, hasDose = false;
const reviewerBox = document.getElementById("reviewer");
reviewerBox.value = localStorage.getItem("imgsuite-reviewer") || "";
reviewerBox.onchange = () => localStorage.setItem("imgsuite-reviewer", reviewerBox.value);
function esc(s){ return String(s).replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c])); }
let measuring = true;
async function load(){
  const r = await fetch(api("/api/table")); const data = await r.json();
  rows = data.rows; hasDose = data.dose;
  if(measuring && !data.measuring) document.body.dataset.measured = "1";
  measuring = data.measuring;
  document.getElementById("measuring").textContent = measuring ? "computing the metrics…" : "";
  document.getElementById("warnings").innerHTML = (data.warnings || []).map(w => "⚠ " + esc(w)).join("<br>");
  if(!reviewerBox.value) reviewerBox.value = data.reviewer;
  const body = document.getElementById("rows");
  body.innerHTML = rows.map(s => `<tr data-testid="structure-row-${esc(s.name)}" data-name="${esc(s.name)}"
     class="${s.name === selected ? "sel" : ""}" title="${esc(s.comment)}${s.reviewer ? " — " + esc(s.reviewer) : ""}">
     <td class="name"><span class="sw" style="background:${s.color}"></span>${esc(s.name)}${s.test && s.test !== s.name ? " / " + esc(s.test) : ""}</td>
     <td data-testid="status-${esc(s.name)}" class="${s.status}">${s.status}</td><td>${s.dice}</td><td>${s.hd95}</td>
     <td>${s.surface_dice}</td><td>${s.volume_diff_pct}</td></tr>`).join("");
  body.querySelectorAll("tr").forEach(tr => tr.onclick = () => select(tr.dataset.name));
}
let selecting = 0;
async function select(name){
  const ticket = ++selecting;
  selected = name;
  document.querySelectorAll("#rows tr").forEach(tr => tr.classList.toggle("sel", tr.dataset.name === name));
  const row = rows.find(s => s.name === name);
  document.getElementById("comment").value = row ? row.comment : "";
  document.getElementById("title").textContent = name;
  const answer = row && row.focus ? row.focus : await (await fetch(api("/api/focus?name=" + encodeURIComponent(name)))).json();
  if(ticket !== selecting) return;  // a later click won
  focus = answer;
  const axial = document.getElementById("axial");
  draw();
  if(!hasDose) return;
  const dvh = document.getElementById("dvh");
  dvh.style.opacity = 0.25;  // the previous structure's DVH, faded until this one's arrives
  dvh.onload = () => { if(new URL(dvh.src).searchParams.get("name") === selected) dvh.style.opacity = 1; };
  const showDvh = () => { if(ticket !== selecting) return;
    dvh.src = api("/api/dvh?name=" + encodeURIComponent(name)); dvh.style.display = "block"; };
  axial.addEventListener("load", showDvh, {once: true});  // the slices first, the DVH after
  axial.addEventListener("error", showDvh, {once: true});
}
function draw(){
  if(!focus) return;
  const w = document.getElementById("window").value;
  const idx = {axial: focus.index[2], coronal: focus.index[1], sagittal: focus.index[0]};
  for(const view of ["axial", "coronal", "sagittal"]){
    const q = `/api/slice?view=${view}&index=${idx[view]}&name=${encodeURIComponent(selected || "")}&window=${encodeURIComponent(w)}&field=${focus.field_mm}`;
    document.getElementById(view).src = api(q);
    document.getElementById("pos-" + view).textContent = "slice " + idx[view];
  }
}
function move(step){
  if(!rows.length) return;
  let i = rows.findIndex(s => s.name === selected);
  i = i < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, i + step));
  select(rows[i].name);
}
async function decide(status){
  if(!selected) return;
  const r = await fetch(api("/api/status"), {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({name: selected, status, comment: document.getElementById("comment").value, reviewer: reviewerBox.value})});
  const data = await r.json();
  document.getElementById("msg").textContent = r.ok ? `${data.name}: ${data.status} (saved)` : data.error;
  await load();
}
async function exportAll(){
  document.getElementById("msg").textContent = "exporting…";
  const r = await fetch(api("/api/export"), {method: "POST", body: "{}"});
  const data = await r.json();
  if(!r.ok){ document.getElementById("msg").textContent = data.error; return; }
  document.getElementById("msg").textContent = "exported";
  document.getElementById("exports").innerHTML = data.files.map(f => `<a href="${api(f)}" target="_blank">${esc(f.split("/").pop())}</a>`).join(" · ");
}
document.addEventListener("keydown", e => {
  if(e.target.tagName === "TEXTAREA" || e.target.tagName === "INPUT") return;
  const k = e.key;
  if(k === "n" || k === "ArrowDown"){ move(1); e.preventDefault(); }
  else if(k === "p" || k === "ArrowUp"){ move(-1); e.preventDefault(); }
  else if(k === "a") decide("approved"); else if(k === "e") decide("needs-edit"); else if(k === "r") decide("rejected");
});
async function poll(){  // the metrics once computed, then the other reviewers' decisions
  try { await load(); } finally { setTimeout(poll, measuring ? 500 : 3000); }
}
load().then(() => { if(rows.length) select(rows[0].name); setTimeout(poll, measuring ? 500 : 3000); });
</script></body></html>
"""
