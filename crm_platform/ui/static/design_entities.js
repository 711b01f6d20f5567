/* The object designer's small behaviours. Everything works without it (the editors' buttons are
   answered by the server); with it: names derived from labels as you type, lists reordered in
   place by drag and drop or by the up/down buttons, and rules expressions checked while typing. */
(function () {
  "use strict";

  /* -- names from English labels: "Booth size" -> booth_size, until the name is edited by hand -- */
  function slug(text) {
    var s = text.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "");
    if (s && !/^[a-z]/.test(s)) s = "f_" + s;
    return s.slice(0, 28).replace(/_+$/, "");
  }
  function targetOf(source) { return document.getElementById(source.dataset.slugSource); }
  document.addEventListener("input", function (event) {
    var el = event.target;
    if (el.matches("[data-slug-source]")) {
      var target = targetOf(el);
      if (target && !target.dataset.touched) target.value = slug(el.value);
    } else if (el.id && document.querySelector('[data-slug-source="' + el.id + '"]')) {
      el.dataset.touched = el.value ? "true" : "";
    }
  });
  function markTouched(root) {
    root.querySelectorAll("[data-slug-source]").forEach(function (source) {
      var target = targetOf(source);
      if (!target) return;
      if (target.value && target.value !== slug(source.value)) target.dataset.touched = "true";
      /* a label typed before this script ran (a slow page load) still names the field */
      else if (!target.value && source.value) target.value = slug(source.value);
    });
  }

  /* -- sortable lists: [data-sortable] lists of [data-item]; lists inside one [data-sortable-group]
        exchange items (a form's sections and the fields not on the form) -- */
  function listsOf(list) {
    var group = list.closest("[data-sortable-group]");
    return group ? Array.prototype.slice.call(group.querySelectorAll("[data-sortable]")) : [list];
  }
  function moveItem(item, how) {
    var list = item.parentElement;
    var lists = listsOf(list);
    var at = lists.indexOf(list);
    if (how === "up") {
      var before = item.previousElementSibling;
      if (before) list.insertBefore(item, before);
      else if (at > 0) lists[at - 1].appendChild(item);
    } else if (how === "down") {
      var after = item.nextElementSibling;
      if (after) list.insertBefore(after, item);
      else if (at < lists.length - 1) lists[at + 1].insertBefore(item, lists[at + 1].firstElementChild);
    } else if (how === "unplace") {
      var pool = lists.filter(function (l) { return l.hasAttribute("data-pool"); })[0];
      if (pool) pool.appendChild(item);
    } else if (how === "place") {
      var placed = lists.filter(function (l) { return !l.hasAttribute("data-pool"); });
      if (!placed.length) return false;  /* no section yet: let the server add one */
      placed[placed.length - 1].appendChild(item);
    } else if (how === "remove") {
      item.remove();
      return true;
    }
    return true;
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-move]");
    if (!button) return;
    var item = button.closest("[data-item]");
    if (!item || !item.parentElement.matches("[data-sortable]")) return;
    event.preventDefault();
    if (!moveItem(item, button.dataset.move)) { button.form.requestSubmit(button); return; }
    if (!item.isConnected) return;
    var visible = Array.prototype.filter.call(item.querySelectorAll("button[data-move]"), function (b) { return b.offsetParent !== null; });
    var again = visible.filter(function (b) { return b.dataset.move === button.dataset.move; })[0];
    if (again || visible[0]) (again || visible[0]).focus();
  });

  var dragged = null;
  document.addEventListener("dragstart", function (event) {
    var item = event.target.closest && event.target.closest("[data-sortable] > [data-item]");
    if (!item) return;
    dragged = item;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", "");
    item.classList.add("dragging");
  });
  document.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
    document.querySelectorAll("[data-sortable].over").forEach(function (l) { l.classList.remove("over"); });
  });
  document.addEventListener("dragover", function (event) {
    if (!dragged) return;
    var list = event.target.closest && event.target.closest("[data-sortable]");
    if (!list || listsOf(dragged.parentElement).indexOf(list) === -1) return;
    event.preventDefault();
    list.classList.add("over");
    var over = event.target.closest("[data-item]");
    if (over && over !== dragged && over.parentElement === list) {
      var box = over.getBoundingClientRect();
      list.insertBefore(dragged, event.clientY > box.top + box.height / 2 ? over.nextElementSibling : over);
    } else if (!over) {
      list.appendChild(dragged);
    }
  });
  document.addEventListener("dragleave", function (event) {
    var list = event.target.closest && event.target.closest("[data-sortable]");
    if (list && !list.contains(event.relatedTarget)) list.classList.remove("over");
  });
  document.addEventListener("drop", function (event) {
    if (dragged && event.target.closest && event.target.closest("[data-sortable]")) event.preventDefault();
  });

  /* -- rules expressions checked while typing: POST /api/v1/rules/check -- */
  function check(area) {
    var out = document.getElementById(area.id + "-check");
    if (!out) return;
    var text = area.value.trim();
    if (!text) { out.textContent = ""; out.className = "check-output"; return; }
    var meta = document.querySelector('meta[name="csrf-token"]');
    var body = { entity: area.dataset.entity, expression: text, purpose: area.dataset.purpose || "condition" };
    if (area.dataset.field) body.field = area.dataset.field;
    fetch("/api/v1/rules/check", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": meta ? meta.content : "" },
      body: JSON.stringify(body)
    }).then(function (response) { return response.json(); }).then(function (result) {
      if (area.value.trim() !== text) return;  /* typed on since */
      if (result.ok) {
        out.className = "check-output ok";
        out.textContent = "✓ " + (out.dataset.okText || "OK") + (result.type ? " (" + result.type + ")" : "");
      } else {
        out.className = "check-output bad";
        var errors = result.errors || (result.error ? [{ line: 1, column: 1, message: result.error.message }] : []);
        out.textContent = errors.map(function (e) { return e.line + ":" + e.column + ": " + e.message; }).join("\n");
      }
    }).catch(function () { out.textContent = ""; });
  }
  var timers = new WeakMap();
  document.addEventListener("input", function (event) {
    var area = event.target.closest && event.target.closest("[data-rules-check]");
    if (!area) return;
    clearTimeout(timers.get(area));
    timers.set(area, setTimeout(function () { check(area); }, 300));
  });

  function init(root) {
    markTouched(root);
    root.querySelectorAll("[data-rules-check]").forEach(function (area) { if (area.value.trim()) check(area); });
  }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSwap", function () { init(document); });
})();
