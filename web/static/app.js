// Polls a background job's state and shows the download link when it is ready.
(function () {
  var box = document.getElementById("job");
  if (!box) { return; }
  var state = document.getElementById("job-state");
  var step = document.getElementById("job-step");
  var message = document.getElementById("job-message");
  var link = document.getElementById("job-download");
  function poll() {
    fetch(box.dataset.url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (job) {
      state.textContent = box.dataset[job.state] || job.state;
      state.dataset.state = job.state;
      step.textContent = job.step || "";
      message.textContent = job.message || "";
      if (job.download) { link.hidden = false; }
      if (job.state === "queued" || job.state === "running") { setTimeout(poll, 1000); }
    });
  }
  poll();
})();
