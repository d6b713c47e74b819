// Actions on the run, datasets and runs pages: rate, correct, curate. Plain fetch, no framework.
import { api } from "./http.js";

(function () {
  const $ = (selector) => document.querySelector(selector);
  const status = (text, bad = false) => {
    const line = $("#action-status");
    if (!line) return;
    line.textContent = text;
    line.classList.toggle("bad", bad);
  };
  const attempt = (work) => work().catch((error) => status(error.message, true));

  const actions = $(".run-actions");
  if (actions) {
    const runId = actions.dataset.run;
    const annotate = (body, done) => attempt(async () => {
      await api("POST", `/ui/runs/${runId}/annotate`, body);
      status(done);
      setTimeout(() => window.location.reload(), 400);
    });
    actions.querySelectorAll("[data-annotate]").forEach((button) => button.addEventListener("click", () => {
      const key = button.dataset.annotate;
      const value = key === "stars" ? Number(button.dataset.value) : button.dataset.value;
      annotate({ key, value }, `Saved your ${key} rating.`);
    }));
    $("#save-comment").addEventListener("click", () => {
      const comment = $("#annotate-comment").value.trim();
      if (comment) annotate({ key: "comment", comment }, "Comment saved.");
    });
    $("#save-correction").addEventListener("click", () => {
      const correction = $("#correction").value.trim();
      if (correction) annotate({ key: "correction", correction }, "Correction saved.");
    });
    const select = $("#dataset");
    const toggleNew = () => { $("#new-dataset-label").hidden = select.value !== ""; };
    select.addEventListener("change", toggleNew);
    toggleNew();
    $("#add-to-dataset").addEventListener("click", () => attempt(async () => {
      let datasetId = select.value;
      if (!datasetId) {
        const name = $("#new-dataset").value.trim();
        if (!name) return status("Name the new dataset first.", true);
        datasetId = (await api("POST", "/ui/datasets", { name })).id;
      }
      const result = await api("POST", `/ui/datasets/${datasetId}/items`, { run_ids: [runId] });
      status(result.added ? "Added to the dataset." : "Already in that dataset.");
    }));
  }

  const create = $("#create-dataset");
  if (create) {
    create.addEventListener("submit", (event) => {
      event.preventDefault();
      const form = new FormData(create);
      attempt(async () => {
        const dataset = await api("POST", "/ui/datasets", {
          name: form.get("name").trim(), description: form.get("description").trim() || null,
        });
        window.location.href = `/datasets/${dataset.id}`;
      });
    });
  }

  document.querySelectorAll("tr.clickable").forEach((row) => row.addEventListener("click", (event) => {
    if (event.target.closest("a, button")) return;
    window.location.href = row.dataset.href;
  }));

  const bulk = $("#bulk-add");
  if (bulk) {
    bulk.addEventListener("click", () => attempt(async () => {
      const datasetId = $("#bulk-dataset").value;
      if (!datasetId) return status("Create a dataset first.", true);
      const query = $("#filter-to-dataset").dataset.query;
      const result = await api("POST", `/ui/runs/to-dataset?${query}${query ? "&" : ""}dataset_id=${encodeURIComponent(datasetId)}`);
      status(`Added ${result.added} of ${result.matched} runs (runs already there, or without chat inputs, are skipped).`);
    }));
  }

  document.querySelectorAll("[data-remove-item]").forEach((button) => button.addEventListener("click", () => {
    const datasetId = button.closest("[data-dataset]").dataset.dataset;
    const itemId = button.dataset.removeItem;
    attempt(async () => {
      await api("DELETE", `/ui/datasets/${datasetId}/items/${itemId}`);
      button.closest("tr").remove();
      status("Removed; the dataset's version went up by one. ");
      const undo = document.createElement("button");
      undo.type = "button";
      undo.className = "link-btn";
      undo.id = "undo-remove";
      undo.textContent = "Undo";
      undo.addEventListener("click", () => attempt(async () => {
        await api("POST", `/ui/datasets/${datasetId}/items/${itemId}/restore`);
        status("Restored.");
        setTimeout(() => window.location.reload(), 300);
      }));
      $("#action-status").append(undo);
    });
  }));
})();
