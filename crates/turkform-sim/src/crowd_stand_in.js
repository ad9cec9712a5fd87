// turkform simulator: a local STAND-IN for crowd-html-elements.js.
// It implements only what <crowd-form> submission needs: it turns the named crowd-* elements
// into plain inputs, collects them and the plain inputs inside the crowd-form into MTurk's
// `taskAnswers` JSON ([{field: value}]) and posts that, with the assignmentId, to
// <turkSubmitTo>/mturk/externalSubmit. It does NOT render the real elements' look or behaviour
// (no styling, validation, bounding boxes, audio, ...).
(function () {
  "use strict";
  var params = new URLSearchParams(window.location.search);
  var NOT_AVAILABLE = "ASSIGNMENT_ID_NOT_AVAILABLE";

  function attr(el, name, fallback) {
    return el.hasAttribute(name) ? el.getAttribute(name) : fallback;
  }

  function labelled(el, control) {
    var text = attr(el, "label", attr(el, "header", ""));
    if (!text && el.tagName.toLowerCase() !== "crowd-checkbox" && el.tagName.toLowerCase() !== "crowd-radio-button") {
      return control;
    }
    var label = document.createElement("label");
    if (el.tagName.toLowerCase() === "crowd-checkbox" || el.tagName.toLowerCase() === "crowd-radio-button") {
      label.appendChild(control);
      label.appendChild(document.createTextNode(" " + (text || el.textContent.trim())));
      el.textContent = "";
    } else {
      label.appendChild(document.createTextNode(text + " "));
      label.appendChild(control);
    }
    return label;
  }

  function upgrade(root) {
    root.querySelectorAll("crowd-input").forEach(function (el) {
      var i = document.createElement("input");
      i.type = attr(el, "type", "text");
      i.setAttribute("data-crowd-name", attr(el, "name", ""));
      i.setAttribute("data-crowd-kind", i.type === "number" ? "number" : "text");
      i.placeholder = attr(el, "placeholder", "");
      if (el.hasAttribute("value")) i.value = el.getAttribute("value");
      if (el.hasAttribute("required")) i.required = true;
      el.appendChild(labelled(el, i));
    });
    root.querySelectorAll("crowd-text-area").forEach(function (el) {
      var t = document.createElement("textarea");
      t.setAttribute("data-crowd-name", attr(el, "name", ""));
      t.setAttribute("data-crowd-kind", "text");
      t.rows = parseInt(attr(el, "rows", "3"), 10) || 3;
      t.placeholder = attr(el, "placeholder", "");
      if (el.hasAttribute("value")) t.value = el.getAttribute("value");
      if (el.hasAttribute("required")) t.required = true;
      el.appendChild(labelled(el, t));
    });
    root.querySelectorAll("crowd-checkbox, crowd-radio-button").forEach(function (el) {
      var radio = el.tagName.toLowerCase() === "crowd-radio-button";
      var c = document.createElement("input");
      c.type = radio ? "radio" : "checkbox";
      c.setAttribute("data-crowd-name", attr(el, "name", ""));
      c.setAttribute("data-crowd-value", attr(el, "value", "on"));
      c.setAttribute("data-crowd-kind", "toggle");
      if (radio) {
        var group = el.closest("crowd-radio-group");
        c.name = "crowd-radio-group-" + (group ? Array.prototype.indexOf.call(root.querySelectorAll("crowd-radio-group"), group) : "x");
      }
      if (el.hasAttribute("checked")) c.checked = true;
      el.appendChild(labelled(el, c));
    });
  }

  // One object of field -> value, as crowd-form writes taskAnswers.
  function collect(form) {
    var out = {};
    form.querySelectorAll("[data-crowd-name]").forEach(function (c) {
      var name = c.getAttribute("data-crowd-name");
      if (!name) return;
      var kind = c.getAttribute("data-crowd-kind");
      if (kind === "toggle") {
        var v = {};
        v[c.getAttribute("data-crowd-value")] = c.checked;
        out[name] = v;
      } else if (kind === "number") {
        out[name] = c.value === "" ? "" : Number(c.value);
      } else {
        out[name] = c.value;
      }
    });
    form.querySelectorAll("input[name], textarea[name], select[name]").forEach(function (c) {
      if (c.hasAttribute("data-crowd-name") || c.name.indexOf("crowd-radio-group-") === 0) return;
      if ((c.type === "checkbox" || c.type === "radio") && !c.checked) return;
      if (c.type === "submit" || c.type === "button") return;
      out[c.name] = c.value;
    });
    return out;
  }

  function post(fields) {
    var base = params.get("turkSubmitTo") || "";
    var f = document.createElement("form");
    f.method = "POST";
    f.action = base.replace(/\/$/, "") + "/mturk/externalSubmit";
    Object.keys(fields).forEach(function (k) {
      var i = document.createElement("input");
      i.type = "hidden";
      i.name = k;
      i.value = fields[k];
      f.appendChild(i);
    });
    document.body.appendChild(f);
    f.submit();
  }

  function init() {
    var banner = document.createElement("div");
    banner.id = "crowd-stand-in-note";
    banner.style.cssText = "background:#fff4d0;font:12px sans-serif;padding:4px;margin-bottom:6px";
    banner.textContent = "turkform simulator: crowd-html-elements stand-in (submission only; it does not render the real elements' look)";
    document.body.insertBefore(banner, document.body.firstChild);
    document.querySelectorAll("crowd-form").forEach(function (crowdForm) {
      var form = document.createElement("form");
      while (crowdForm.firstChild) form.appendChild(crowdForm.firstChild);
      crowdForm.appendChild(form);
      upgrade(form);
      var hasSubmit = false;
      form.querySelectorAll("crowd-button").forEach(function (b) {
        if (attr(b, "form-action", "") === "submit") {
          var real = document.createElement("button");
          real.type = "submit";
          real.textContent = b.textContent.trim() || "Submit";
          b.textContent = "";
          b.appendChild(real);
          hasSubmit = true;
        }
      });
      if (!hasSubmit) {
        var submit = document.createElement("button");
        submit.type = "submit";
        submit.id = "crowd-submit";
        submit.textContent = "Submit";
        form.appendChild(submit);
      }
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var assignmentId = params.get("assignmentId");
        if (!assignmentId || assignmentId === NOT_AVAILABLE) {
          var n = document.getElementById("crowd-preview-note") || document.createElement("p");
          n.id = "crowd-preview-note";
          n.textContent = "Preview: accept the HIT to submit.";
          form.appendChild(n);
          return;
        }
        post({ assignmentId: assignmentId, taskAnswers: JSON.stringify([collect(form)]) });
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
