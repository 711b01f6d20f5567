/* Small behaviours the generated screens need; everything works without it except type-ahead and drag and drop. */
(function () {
  "use strict";

  function toast(message, kind) {
    var box = document.getElementById("toast");
    if (!box) return;
    box.textContent = message;
    box.className = "show " + (kind || "");
    clearTimeout(box._timer);
    box._timer = setTimeout(function () { box.className = ""; }, 6000);
  }
  window.crmToast = toast;

  /* Every htmx request carries the session's CSRF token (htmx attribute inheritance is off). */
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) event.detail.headers["X-CSRF-Token"] = meta.content;
  });

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches("select[data-autosubmit]")) el.form.submit();
    if (el.matches("input[data-select-all]")) {
      document.querySelectorAll('input[name="ids"]').forEach(function (box) { box.checked = el.checked; });
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
  }, true);

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-toggle]");
    if (toggle) {
      var target = document.getElementById(toggle.dataset.toggle);
      var open = target.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    }
    var option = event.target.closest(".lookup-options [data-id]");
    if (option) choose(option);
  });

  /* Reference type-ahead: pick an option -> hidden id + visible title. */
  function choose(option) {
    var box = option.closest("[data-lookup]");
    var hidden = box.querySelector("[data-lookup-value]");
    var text = box.querySelector("[data-lookup-text]");
    hidden.value = option.dataset.id;
    text.value = option.dataset.title;
    box.querySelector(".lookup-options").innerHTML = "";
    text.setAttribute("aria-expanded", "false");
    hidden.dispatchEvent(new Event("change", { bubbles: true }));
  }
  document.addEventListener("keydown", function (event) {
    var text = event.target.closest("[data-lookup-text]");
    if (!text) return;
    var list = text.parentElement.querySelector(".lookup-options");
    var items = Array.prototype.slice.call(list.querySelectorAll("[data-id]"));
    var current = items.indexOf(list.querySelector("[aria-selected=true]"));
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!items.length) return;
      var next = event.key === "ArrowDown" ? Math.min(current + 1, items.length - 1) : Math.max(current - 1, 0);
      items.forEach(function (item, i) { item.setAttribute("aria-selected", i === next ? "true" : "false"); });
      text.setAttribute("aria-activedescendant", items[next].id);
    } else if (event.key === "Enter" && current >= 0) {
      event.preventDefault();
      choose(items[current]);
    } else if (event.key === "Escape") {
      list.innerHTML = "";
    }
  });
  document.addEventListener("input", function (event) {
    var text = event.target.closest("[data-lookup-text]");
    if (text && text.value === "") {
      var hidden = text.parentElement.querySelector("[data-lookup-value]");
      hidden.value = "";
      hidden.dispatchEvent(new Event("change", { bubbles: true }));
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var list = event.detail.target;
    if (list.classList && list.classList.contains("lookup-options")) {
      var text = list.parentElement.querySelector("[data-lookup-text]");
      text.setAttribute("aria-expanded", list.children.length ? "true" : "false");
    }
  });
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var message = xhr.statusText;
    try { message = JSON.parse(xhr.responseText).error.message; } catch (e) { /* not JSON */ }
    toast(message, "error");
  });

  /* Form conditions (hide / require / readonly rules), re-evaluated by the server as the user types. */
  document.addEventListener("crm:conditions", function (event) {
    var form = document.getElementById("record-form");
    if (!form) return;
    var c = event.detail || {};
    form.querySelectorAll(".field[data-field]").forEach(function (box) {
      var name = box.dataset.field;
      if (name.indexOf("-") !== -1) return;  /* child rows keep their own state */
      box.hidden = (c.hidden || []).indexOf(name) !== -1;
      var mark = box.querySelector(".req-mark");
      var required = (c.required || []).indexOf(name) !== -1 || box.dataset.alwaysRequired === "true";
      if (mark) mark.hidden = !required;
      box.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(function (input) {
        if (required) input.setAttribute("aria-required", "true"); else input.removeAttribute("aria-required");
      });
    });
  });

  /* Kanban: drag a card to a column; the server answers with the board or explains a refusal. */
  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest("[data-card]");
    if (!card) return;
    event.dataTransfer.setData("text/plain", card.dataset.card);
    event.dataTransfer.effectAllowed = "move";
    card.classList.add("dragging");
  });
  document.addEventListener("dragend", function (event) {
    var card = event.target.closest("[data-card]");
    if (card) card.classList.remove("dragging");
  });
  document.addEventListener("dragover", function (event) {
    var column = event.target.closest("[data-column]");
    if (column) { event.preventDefault(); column.classList.add("over"); }
  });
  document.addEventListener("dragleave", function (event) {
    var column = event.target.closest("[data-column]");
    if (column) column.classList.remove("over");
  });
  document.addEventListener("drop", function (event) {
    var column = event.target.closest("[data-column]");
    if (!column) return;
    event.preventDefault();
    column.classList.remove("over");
    var card = document.querySelector('[data-card="' + event.dataTransfer.getData("text/plain") + '"]');
    if (!card || card.closest("[data-column]") === column) return;
    moveCard(card, column.dataset.column);
  });
  /* Keyboard alternative: each card has a select of columns. */
  document.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-move]");
    if (!select) return;
    moveCard(select.closest("[data-card]"), select.value);
  });
  function moveCard(card, value) {
    var board = card.closest("[data-board]");
    htmx.ajax("POST", card.dataset.moveUrl, {
      target: "#board", swap: "outerHTML", select: "#board",
      values: { value: value, version: card.dataset.version, field: board.dataset.field, csrf_token: board.dataset.csrf }
    });
  }
})();
