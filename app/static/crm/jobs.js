// A background job's page: poll its status every second and move the progress bar (rows done of all,
// rows per second, time left); reload once the job has ended so that its result shows.
(function () {
  var box = document.querySelector(".crm-job[data-status-url]");
  if (!box) { return; }
  var bar = box.querySelector(".progress-bar");
  var words = box.querySelector(".crm-job-words");
  var zh = box.getAttribute("data-lang") === "zh";
  var phases = zh ? {queued: "排队中", start: "开始", check: "检查中", write: "写入中", "export": "导出中"}
                  : {queued: "queued", start: "starting", check: "checking", write: "writing", "export": "exporting"};
  function seconds(s) {
    if (s === null || s === undefined) { return ""; }
    if (s < 60) { return zh ? ("约 " + s + " 秒") : ("about " + s + " s"); }
    var m = Math.round(s / 60);
    return zh ? ("约 " + m + " 分钟") : ("about " + m + " min");
  }
  function show(job) {
    var percent = Math.max(0, Math.min(100, job.percent || 0));
    bar.style.width = percent + "%";
    bar.setAttribute("aria-valuenow", String(percent));
    bar.textContent = percent + "%";
    var parts = [phases[job.phase] || job.phase];
    if (job.total) { parts.push(job.done.toLocaleString() + " / " + job.total.toLocaleString() + (zh ? " 行" : " rows")); }
    if (job.rate) { parts.push(Math.round(job.rate).toLocaleString() + (zh ? " 行/秒" : " rows/s")); }
    if (job.seconds_left) { parts.push((zh ? "剩余" : "left: ") + seconds(job.seconds_left)); }
    words.textContent = parts.join(" · ");
  }
  function poll() {
    fetch(box.getAttribute("data-status-url"), {credentials: "same-origin"}).then(function (r) {
      return r.json();
    }).then(function (job) {
      show(job);
      if (["done", "failed", "cancelled"].indexOf(job.status) >= 0) {
        window.setTimeout(function () { window.location.reload(); }, 400);
      } else {
        window.setTimeout(poll, 700);
      }
    }).catch(function () { window.setTimeout(poll, 2000); });
  }
  poll();
}());
